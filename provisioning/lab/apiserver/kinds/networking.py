"""Ingresses and NetworkPolicies: shape checks and the defaults the API server fills."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provisioning.lab.apiserver.errors import bad_value, invalid
from provisioning.lab.apiserver.kinds.base import KindRules
from provisioning.lab.apiserver.model import Obj

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


class IngressRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        if not isinstance(obj.setdefault("spec", {}), dict):
            raise invalid(obj, bad_value("spec", obj["spec"], "must be an object"))
        if old is None:
            obj["status"] = {"loadBalancer": {}}


class NetworkPolicyRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            raise invalid(obj, bad_value("spec", spec, "must be an object"))
        spec.setdefault("podSelector", {})
        if "policyTypes" not in spec:
            spec["policyTypes"] = ["Ingress", *(["Egress"] if spec.get("egress") else [])]
