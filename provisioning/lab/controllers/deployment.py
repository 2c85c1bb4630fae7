"""The deployment controller: a deployment's pods follow its template and replicas, and its
status follows its pods (no ReplicaSets: pods are owned by the deployment directly)."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import TYPE_CHECKING, ClassVar

from provisioning.lab.apiserver.kinds.deployment import owned_pods
from provisioning.lab.apiserver.model import BY_KIND, Event, Obj
from provisioning.lab.apiserver.objects import (
    labels_of,
    now,
    pod_ready,
    pod_terminal,
    pod_terminating,
    random_suffix,
)
from provisioning.lab.controllers.base import SettlingController

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


class DeploymentController(SettlingController):
    name: ClassVar[str] = "deployment"
    watches: ClassVar[frozenset[str]] = frozenset({"Deployment", "Pod"})

    def __init__(self) -> None:
        self._dirty: set[tuple[str, str]] = set()

    def observe(self, store: Store, event: Event) -> None:
        m = event.obj["metadata"]
        ns = m.get("namespace", "")
        if event.kind == "Deployment" and event.type != "DELETED":
            self._dirty.add((ns, m["name"]))
        elif event.kind == "Pod":
            for ref in m.get("ownerReferences") or []:
                if ref.get("kind") == "Deployment":
                    self._dirty.add((ns, ref.get("name", "")))

    def reconcile(self, store: Store) -> bool:
        if not self._dirty:
            return False
        namespace, name = self._dirty.pop()
        dep = store.lookup(BY_KIND["Deployment"], namespace, name)
        if dep is None:
            return True
        pod_res = BY_KIND["Pod"]
        template_hash = pod_template_hash(dep["spec"]["template"])
        current = []
        for pod in owned_pods(store, dep):
            if pod_terminating(pod):
                continue  # going: neither counted nor deleted again (as a ReplicaSet does)
            if pod_terminal(pod) or labels_of(pod).get("pod-template-hash") != template_hash:
                store.delete_now(pod_res, namespace, pod["metadata"]["name"])
            else:
                current.append(pod)
        missing = dep["spec"]["replicas"] - len(current)
        for _ in range(missing):
            store.create_now(pod_res, namespace, pod_for(store, dep, template_hash))
        surplus = sorted(
            current,
            key=lambda p: (
                pod_ready(p),
                p["metadata"]["creationTimestamp"],
                int(p["metadata"]["resourceVersion"]),
            ),
        )
        for pod in surplus[: max(-missing, 0)]:
            store.delete_now(pod_res, namespace, pod["metadata"]["name"])
        update_status(store, dep, template_hash)
        return True


def pod_for(store: Store, dep: Obj, template_hash: str) -> Obj:
    """A new pod of `dep`'s template, owned by it, with a free generated name."""
    template = copy.deepcopy(dep["spec"]["template"])
    tmeta, dmeta = template.get("metadata") or {}, dep["metadata"]
    name = f"{dmeta['name']}-{template_hash}-{random_suffix()}"
    while store.lookup(BY_KIND["Pod"], dmeta["namespace"], name) is not None:
        name = f"{dmeta['name']}-{template_hash}-{random_suffix()}"
    owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": dmeta["name"],
        "uid": dmeta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    pod_meta = {
        "name": name,
        "generateName": f"{dmeta['name']}-{template_hash}-",
        "namespace": dmeta["namespace"],
        "labels": {**(tmeta.get("labels") or {}), "pod-template-hash": template_hash},
        "ownerReferences": [owner],
    }  # fmt: skip
    if tmeta.get("annotations"):
        pod_meta["annotations"] = tmeta["annotations"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": template.get("spec") or {}}  # fmt: skip


def update_status(store: Store, dep: Obj, template_hash: str) -> None:
    """Replicas, readiness and conditions from the deployment's pods."""
    pods = [p for p in owned_pods(store, dep) if not pod_terminal(p)]
    ready = sum(pod_ready(p) for p in pods)
    updated = sum(labels_of(p).get("pod-template-hash") == template_hash for p in pods)
    wanted = dep["spec"]["replicas"]
    status: Obj = {
        "observedGeneration": dep["metadata"].get("generation", 1),
        "replicas": len(pods),
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
    }
    if len(pods) > ready:
        status["unavailableReplicas"] = len(pods) - ready
    old_conditions = (dep.get("status") or {}).get("conditions") or []
    status["conditions"] = deployment_conditions(
        ready >= wanted, updated == wanted == len(pods) == ready, old_conditions
    )
    new = copy.deepcopy(dep)
    new["status"] = status
    store.write_status(BY_KIND["Deployment"], new)


def pod_template_hash(template: Obj) -> str:
    """10 hex digits that change when the pod template changes."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def deployment_conditions(available: bool, complete: bool, old: list[Obj]) -> list[Obj]:
    """Available and Progressing conditions; timestamps kept while a condition is unchanged."""
    wanted = [
        ("Available", available, "MinimumReplicasAvailable" if available
         else "MinimumReplicasUnavailable", "Deployment has minimum availability." if available
         else "Deployment does not have minimum availability."),
        ("Progressing", True, "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
         "Deployment has successfully progressed." if complete else "Deployment is progressing."),
    ]  # fmt: skip
    previous = {c.get("type"): c for c in old}
    conditions = []
    for kind, ok, reason, message in wanted:
        cond = {"type": kind, "status": "True" if ok else "False", "reason": reason,
                "message": message}  # fmt: skip
        before = previous.get(kind) or {}
        same = all(before.get(k) == cond[k] for k in ("status", "reason"))
        stamp = before.get("lastTransitionTime") if same else None
        cond.update(lastUpdateTime=stamp or now(), lastTransitionTime=stamp or now())
        conditions.append(cond)
    return conditions
