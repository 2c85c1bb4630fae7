"""The deployment controller: a deployment owns one ReplicaSet per pod template (named by the
template's hash, with a revision), scales the current one to its replicas and the older ones
to 0 at once (a rollout without surge), keeps revisionHistoryLimit old ones for
`kubectl rollout history`/`undo`, and its status follows the pods of its ReplicaSets."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import TYPE_CHECKING, ClassVar, Final

from provisioning.lab.apiserver.events import record_event
from provisioning.lab.apiserver.kinds.deployment import owned
from provisioning.lab.apiserver.model import BY_KIND, Event, Obj
from provisioning.lab.apiserver.objects import labels_of, now, pod_ready, pod_terminal
from provisioning.lab.controllers.base import WorkQueueController
from provisioning.lab.controllers.replicaset import owner_reference

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


REVISION: Final = "deployment.kubernetes.io/revision"
CHANGE_CAUSE: Final = "kubernetes.io/change-cause"
COMPONENT: Final = "deployment-controller"


class DeploymentController(WorkQueueController):
    name: ClassVar[str] = "deployment"
    watches: ClassVar[frozenset[str]] = frozenset({"Deployment", "ReplicaSet"})

    def keys(self, store: Store, event: Event) -> set[tuple[str, str]]:
        m = event.obj["metadata"]
        ns = m.get("namespace", "")
        if event.kind == "Deployment" and event.type != "DELETED":
            return {(ns, m["name"])}
        if event.kind == "ReplicaSet":
            refs = m.get("ownerReferences") or []
            return {(ns, r.get("name", "")) for r in refs if r.get("kind") == "Deployment"}
        return set()

    def sync(self, store: Store, namespace: str, name: str) -> None:
        dep = store.lookup(BY_KIND["Deployment"], namespace, name)
        if dep is None:
            return
        template_hash = pod_template_hash(dep["spec"]["template"])
        sets = owned(store, "ReplicaSet", dep)
        current = next((rs for rs in sets if labels_of(rs).get(HASH) == template_hash), None)
        if current is None:
            current = store.create_now(
                BY_KIND["ReplicaSet"],
                namespace,
                replica_set_for(dep, template_hash, next_revision(sets)),
            )
            _scaled(store, dep, current, 0)
        else:
            _ensure_latest(store, current, sets)
            _scale(store, dep, current, dep["spec"]["replicas"])
        for rs in sets:
            if rs["metadata"]["name"] != current["metadata"]["name"]:
                _scale(store, dep, rs, 0)
        _prune(store, dep, current["metadata"]["name"])
        _set_revision(store, dep, revision(current))
        update_status(store, dep, template_hash)


HASH: Final = "pod-template-hash"


def revision(rs: Obj) -> int:
    """A ReplicaSet's revision annotation (0 when absent)."""
    value = (rs["metadata"].get("annotations") or {}).get(REVISION, "0")
    return int(value) if str(value).isdigit() else 0


def next_revision(sets: list[Obj]) -> int:
    """One more than the highest revision of a deployment's ReplicaSets."""
    return max((revision(rs) for rs in sets), default=0) + 1


def _ensure_latest(store: Store, rs: Obj, sets: list[Obj]) -> None:
    """A rollback to an older template makes its ReplicaSet the newest revision again."""
    if revision(rs) < max(revision(r) for r in sets):
        new = copy.deepcopy(rs)
        new["metadata"].setdefault("annotations", {})[REVISION] = str(next_revision(sets))
        store.replace_now(BY_KIND["ReplicaSet"], rs["metadata"]["namespace"],
                          rs["metadata"]["name"], new)  # fmt: skip


def _scale(store: Store, dep: Obj, rs: Obj, replicas: int) -> None:
    before = rs["spec"]["replicas"]
    if before == replicas:
        return
    new = copy.deepcopy(store.require(BY_KIND["ReplicaSet"], rs["metadata"]["namespace"],
                                      rs["metadata"]["name"]))  # fmt: skip
    new["spec"]["replicas"] = replicas
    new["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = (
        str(dep["spec"]["replicas"])
    )
    store.replace_now(BY_KIND["ReplicaSet"], rs["metadata"]["namespace"], rs["metadata"]["name"],
                      new)  # fmt: skip
    _scaled(store, dep, new, before)


def _scaled(store: Store, dep: Obj, rs: Obj, before: int) -> None:
    after = rs["spec"]["replicas"]
    if after != before:
        way = "up" if after > before else "down"
        record_event(store, dep, "ScalingReplicaSet", f"Scaled {way} replica set "
                     f"{rs['metadata']['name']} from {before} to {after}", COMPONENT)  # fmt: skip


def _prune(store: Store, dep: Obj, keep: str) -> None:
    """Old ReplicaSets beyond revisionHistoryLimit go, oldest revision first."""
    limit = dep["spec"].get("revisionHistoryLimit", 10)
    old = sorted((rs for rs in owned(store, "ReplicaSet", dep)
                  if rs["metadata"]["name"] != keep and not rs["spec"]["replicas"]),
                 key=revision)  # fmt: skip
    for rs in old[: max(len(old) - limit, 0)]:
        store.delete_now(BY_KIND["ReplicaSet"], rs["metadata"]["namespace"], rs["metadata"]["name"])


def _set_revision(store: Store, dep: Obj, number: int) -> None:
    if (dep["metadata"].get("annotations") or {}).get(REVISION) == str(number):
        return
    new = copy.deepcopy(dep)
    new["metadata"].setdefault("annotations", {})[REVISION] = str(number)
    store.replace_now(BY_KIND["Deployment"], dep["metadata"]["namespace"],
                      dep["metadata"]["name"], new)  # fmt: skip


def replica_set_for(dep: Obj, template_hash: str, number: int) -> Obj:
    """The ReplicaSet of `dep`'s current template: its selector and labels carry the hash."""
    dmeta, spec = dep["metadata"], dep["spec"]
    template = copy.deepcopy(spec["template"])
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH: template_hash}
    selector = copy.deepcopy(spec["selector"])
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH: template_hash}
    annotations = {REVISION: str(number),
                   "deployment.kubernetes.io/desired-replicas": str(spec["replicas"]),
                   "deployment.kubernetes.io/max-replicas": str(spec["replicas"])}  # fmt: skip
    if CHANGE_CAUSE in (dmeta.get("annotations") or {}):
        annotations[CHANGE_CAUSE] = dmeta["annotations"][CHANGE_CAUSE]
    rs_meta = {"name": f"{dmeta['name']}-{template_hash}", "namespace": dmeta["namespace"],
               "labels": dict(tmeta["labels"]), "annotations": annotations,
               "ownerReferences": [owner_reference(dep)]}  # fmt: skip
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": rs_meta,
        "spec": {"replicas": spec["replicas"], "selector": selector, "template": template},
    }


def update_status(store: Store, dep: Obj, template_hash: str) -> None:
    """Replicas, readiness and conditions from the pods of the deployment's ReplicaSets."""
    pods = [p for rs in owned(store, "ReplicaSet", dep) for p in owned(store, "Pod", rs)
            if not pod_terminal(p)]  # fmt: skip
    ready = sum(pod_ready(p) for p in pods)
    updated = sum(labels_of(p).get(HASH) == template_hash for p in pods)
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
    new = copy.deepcopy(store.require(BY_KIND["Deployment"], dep["metadata"]["namespace"],
                                      dep["metadata"]["name"]))  # fmt: skip
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
