"""ReplicaSets: validation, defaults, generation, and the delete cascade to their pods."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provisioning.lab.apiserver.errors import bad_value, invalid, required
from provisioning.lab.apiserver.kinds.base import KindRules
from provisioning.lab.apiserver.kinds.deployment import deployment_spec_problem, owned
from provisioning.lab.apiserver.kinds.pod import default_pod_spec
from provisioning.lab.apiserver.kinds.podsecurity import warn_pod_template
from provisioning.lab.apiserver.model import BY_KIND, Obj

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


class ReplicaSetRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise invalid(obj, required("spec"))
        problem = deployment_spec_problem(spec)
        if problem:
            raise invalid(obj, problem)
        namespace = store.lookup(BY_KIND["Namespace"], None, obj["metadata"]["namespace"])
        if old is None or spec["template"] != old["spec"]["template"]:
            warn_pod_template(namespace, spec["template"])
        default_pod_spec(spec["template"]["spec"])
        if old is None:
            obj["metadata"]["generation"] = 1
            obj["status"] = {"replicas": 0}
            return
        if spec["selector"] != old["spec"]["selector"]:
            raise invalid(obj, bad_value("spec.selector", spec["selector"], "field is immutable"))
        if spec != old["spec"]:
            obj["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1

    def after_delete(self, store: Store, obj: Obj) -> None:
        for pod in owned(store, "Pod", obj):
            store.delete_now(BY_KIND["Pod"], obj["metadata"]["namespace"], pod["metadata"]["name"])
