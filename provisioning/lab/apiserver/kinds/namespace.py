"""Namespaces: the name label, the finalizer, and a delete that empties the namespace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from provisioning.lab.apiserver.errors import ApiError, object_details
from provisioning.lab.apiserver.kinds.base import KindRules
from provisioning.lab.apiserver.model import BY_KIND, RESOURCES, Obj

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store

PROTECTED_NAMESPACES: Final = ("default", "kube-system", "kube-public", "kube-node-lease")
DELETE_FIRST: Final = ("Deployment", "ReplicaSet", "Service", "Pod")


class NamespaceRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        name = obj["metadata"]["name"]
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        if old is None:
            obj["status"] = {"phase": "Active"}

    def before_delete(self, store: Store, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if name in PROTECTED_NAMESPACES:
            message = f'namespaces "{name}" is forbidden: this namespace may not be deleted'
            raise ApiError(403, "Forbidden", message, object_details(BY_KIND["Namespace"], name))
        rest = (r.kind for r in RESOURCES if r.namespaced and r.kind not in DELETE_FIRST)
        for kind in (*DELETE_FIRST, *rest):
            res = BY_KIND[kind]
            for item in store.select(res, name):
                if store.lookup(res, name, item["metadata"]["name"]) is not None:
                    store.delete_now(res, name, item["metadata"]["name"])
