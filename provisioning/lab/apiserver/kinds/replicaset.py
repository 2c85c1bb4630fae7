"""ReplicaSets: validation, defaults, generation, and the delete cascade to their pods."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provisioning.lab.apiserver.kinds.base import KindRules
from provisioning.lab.apiserver.kinds.deployment import admit_workload, owned
from provisioning.lab.apiserver.kinds.pod import default_pod_spec
from provisioning.lab.apiserver.model import BY_KIND, Obj

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


class ReplicaSetRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        admit_workload(store, obj, old, default_template, {"replicas": 0})

    def after_delete(self, store: Store, obj: Obj) -> None:
        for pod in owned(store, "Pod", obj):
            store.delete_now(BY_KIND["Pod"], obj["metadata"]["namespace"], pod["metadata"]["name"])


def default_template(spec: Obj) -> None:
    """A ReplicaSet's defaults are its pod template's."""
    default_pod_spec(spec["template"]["spec"])
