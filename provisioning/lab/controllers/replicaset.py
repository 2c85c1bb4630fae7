"""The ReplicaSet controller: a ReplicaSet's pods follow its template and replicas, and its
status follows its pods."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, ClassVar

from provisioning.lab.apiserver.errors import ApiError
from provisioning.lab.apiserver.events import record_event
from provisioning.lab.apiserver.kinds.deployment import owned
from provisioning.lab.apiserver.model import BY_KIND, Event, Obj
from provisioning.lab.apiserver.objects import (
    labels_of,
    pod_ready,
    pod_terminal,
    pod_terminating,
    random_suffix,
)
from provisioning.lab.controllers.base import WorkQueueController

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store

COMPONENT = "replicaset-controller"


class ReplicaSetController(WorkQueueController):
    name: ClassVar[str] = "replicaset"
    watches: ClassVar[frozenset[str]] = frozenset({"ReplicaSet", "Pod"})

    def keys(self, store: Store, event: Event) -> set[tuple[str, str]]:
        m = event.obj["metadata"]
        ns = m.get("namespace", "")
        if event.kind == "ReplicaSet" and event.type != "DELETED":
            return {(ns, m["name"])}
        if event.kind == "Pod":
            refs = m.get("ownerReferences") or []
            return {(ns, r.get("name", "")) for r in refs if r.get("kind") == "ReplicaSet"}
        return set()

    def sync(self, store: Store, namespace: str, name: str) -> None:
        rs = store.lookup(BY_KIND["ReplicaSet"], namespace, name)
        if rs is None:
            return
        pod_res = BY_KIND["Pod"]
        current = []
        for pod in owned(store, "Pod", rs):
            if pod_terminating(pod):
                continue  # going (Terminating): neither counted nor deleted again
            if pod_terminal(pod):
                store.delete_now(pod_res, namespace, pod["metadata"]["name"])
            else:
                current.append(pod)
        missing = rs["spec"]["replicas"] - len(current)
        for _ in range(missing):
            try:
                pod = store.create_now(pod_res, namespace, pod_for(store, rs))
            except ApiError as exc:  # e.g. Pod Security admission: retried on the next change
                record_event(store, rs, "FailedCreate", f"Error creating: {exc.message}",
                             COMPONENT, "Warning")  # fmt: skip
                break
            record_event(store, rs, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                         COMPONENT)  # fmt: skip
        surplus = sorted(current, key=deletion_order)
        for pod in surplus[: max(-missing, 0)]:
            store.delete_now(pod_res, namespace, pod["metadata"]["name"])
            record_event(store, rs, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                         COMPONENT)  # fmt: skip
        update_status(store, rs)


def deletion_order(pod: Obj) -> tuple[bool, str, int]:
    """Not-ready pods go first, then the youngest."""
    m = pod["metadata"]
    return pod_ready(pod), m["creationTimestamp"], int(m["resourceVersion"])


def owner_reference(owner: Obj) -> Obj:
    """A controller ownerReference to `owner`."""
    m = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": m["name"],
            "uid": m["uid"], "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def pod_for(store: Store, rs: Obj) -> Obj:
    """A new pod of `rs`'s template, owned by it, with a free generated name."""
    template = copy.deepcopy(rs["spec"]["template"])
    tmeta, rmeta = template.get("metadata") or {}, rs["metadata"]
    name = f"{rmeta['name']}-{random_suffix()}"
    while store.lookup(BY_KIND["Pod"], rmeta["namespace"], name) is not None:
        name = f"{rmeta['name']}-{random_suffix()}"
    pod_meta = {"name": name, "generateName": f"{rmeta['name']}-",
                "namespace": rmeta["namespace"], "labels": dict(tmeta.get("labels") or {}),
                "ownerReferences": [owner_reference(rs)]}  # fmt: skip
    if tmeta.get("annotations"):
        pod_meta["annotations"] = tmeta["annotations"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": template.get("spec") or {}}  # fmt: skip


def update_status(store: Store, rs: Obj) -> None:
    """Replicas and readiness from the ReplicaSet's pods."""
    pods = [p for p in owned(store, "Pod", rs) if not (pod_terminal(p) or pod_terminating(p))]
    ready = sum(pod_ready(p) for p in pods)
    template_labels = (rs["spec"]["template"].get("metadata") or {}).get("labels") or {}
    labelled = sum(labels_of(p).items() >= template_labels.items() for p in pods)
    new = copy.deepcopy(rs)
    new["status"] = {"replicas": len(pods), "fullyLabeledReplicas": labelled,
                     "readyReplicas": ready, "availableReplicas": ready,
                     "observedGeneration": rs["metadata"].get("generation", 1)}  # fmt: skip
    store.write_status(BY_KIND["ReplicaSet"], new)
