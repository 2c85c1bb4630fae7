"""Graceful deletion, as a real API server does it with a kubelet behind it: a bound pod is
marked Terminating (deletionTimestamp, deletionGracePeriodSeconds) and removed only when its
kubelet has stopped it; a namespace stays Terminating until its last pod is gone."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from provisioning.lab.apiserver.model import BY_KIND, Obj, Resource
from provisioning.lab.apiserver.objects import meta, now, pod_terminal

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


def grace_period(store: Store, pod: Obj, grace: int | None) -> int:
    """0 (remove at once) unless a kubelet runs the bound, not finished pod."""
    if not store.graceful_pods or not pod["spec"].get("nodeName") or pod_terminal(pod):
        return 0
    period = grace if grace is not None else pod["spec"].get("terminationGracePeriodSeconds")
    return max(int(period if period is not None else 30), 0)


def terminate_pod(store: Store, res: Resource, pod: Obj, period: int) -> Obj:
    """Mark a pod Terminating (a shorter grace period may replace a longer one)."""
    current = pod["metadata"].get("deletionGracePeriodSeconds")
    if current is not None and current <= period:
        return copy.deepcopy(pod)
    pod = copy.deepcopy(pod)
    pod["metadata"].update(deletionTimestamp=now(period), deletionGracePeriodSeconds=period)
    store._commit("MODIFIED", res, pod)
    return copy.deepcopy(pod)


def terminate_namespace(store: Store, res: Resource, ns: Obj) -> Obj:
    """Terminating until its last (Terminating) pod is gone, as the namespace controller
    keeps it; no new content meanwhile."""
    ns = copy.deepcopy(ns)
    ns["metadata"]["deletionTimestamp"] = now()
    ns["status"] = {"phase": "Terminating"}
    store._commit("MODIFIED", res, ns)
    return copy.deepcopy(ns)


def namespace_emptied(store: Store, name: str) -> None:
    ns = store.lookup(BY_KIND["Namespace"], None, name)
    if (
        ns is not None
        and meta(ns).get("deletionTimestamp")
        and not store.select(BY_KIND["Pod"], name)
    ):
        store._commit("DELETED", BY_KIND["Namespace"], copy.deepcopy(ns))
