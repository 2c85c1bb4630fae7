"""Ingresses and NetworkPolicies: shape checks and the defaults the API server fills (a
NetworkPolicy's in `kinds/netpol.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provisioning.lab.apiserver.errors import bad_value, invalid
from provisioning.lab.apiserver.kinds import netpol
from provisioning.lab.apiserver.kinds.base import KindRules
from provisioning.lab.apiserver.model import BY_KIND, Obj

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS = "kubernetes.io/ingress.class"


class IngressRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        if not isinstance(obj.setdefault("spec", {}), dict):
            raise invalid(obj, bad_value("spec", obj["spec"], "must be an object"))
        if old is None:
            obj["status"] = {"loadBalancer": {}}
            default_ingress_class(store, obj)


def default_ingress_class(store: Store, ingress: Obj) -> None:
    """The DefaultIngressClass admission plugin (kubernetes
    plugin/pkg/admission/network/defaultingressclass/admission.go `Admit`): on create, an
    Ingress naming no class (neither `spec.ingressClassName` nor the legacy annotation) gets
    the IngressClass annotated `ingressclass.kubernetes.io/is-default-class: "true"` (exactly),
    the newest one when several are, ties by name (`getDefaultClass`)."""
    annotations = ingress.get("metadata", {}).get("annotations") or {}
    if ingress["spec"].get("ingressClassName") or LEGACY_CLASS in annotations:
        return
    defaults = [
        c for c in store.select(BY_KIND["IngressClass"], None)
        if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"
    ]  # fmt: skip
    if defaults:
        # newest first, ties by name (RFC 3339 stamps of one format sort as text)
        defaults.sort(key=lambda c: c["metadata"]["name"])
        defaults.sort(key=lambda c: c["metadata"].get("creationTimestamp", ""), reverse=True)
        ingress["spec"]["ingressClassName"] = defaults[0]["metadata"]["name"]


class NetworkPolicyRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            raise invalid(obj, bad_value("spec", spec, "must be an object"))
        netpol.set_defaults(spec)  # defaults first, then validation, as the API server
        causes = netpol.spec_causes(spec)
        if causes:
            raise invalid(obj, *causes)
        netpol.stored_form(spec)
