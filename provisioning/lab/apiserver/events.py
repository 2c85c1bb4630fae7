"""core/v1 Events: what the lab's controllers record about objects (`kubectl describe`,
`kubectl get events`), aggregated by object, reason and message as a real recorder does."""

from __future__ import annotations

import copy
import secrets
from typing import TYPE_CHECKING

from provisioning.lab.apiserver.model import BY_KIND, Obj
from provisioning.lab.apiserver.objects import now

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


def involved(obj: Obj) -> Obj:
    """The ObjectReference of `obj`."""
    m = obj["metadata"]
    ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
           "name": m["name"], "uid": m.get("uid", ""),
           "resourceVersion": m.get("resourceVersion", "")}  # fmt: skip
    if m.get("namespace"):
        ref["namespace"] = m["namespace"]
    return ref


def record_event(
    store: Store, obj: Obj, reason: str, message: str, component: str, type_: str = "Normal"
) -> None:
    """Record (or count again) an event about `obj`; a no-op when its namespace is gone."""
    res = BY_KIND["Event"]
    ref = involved(obj)
    namespace = ref.get("namespace") or "default"
    if store.lookup(BY_KIND["Namespace"], None, namespace) is None:
        return
    stamp = now()
    for old in store.select(res, namespace):
        same = (old["involvedObject"].get("uid"), old["reason"], old["message"])
        if same == (ref["uid"], reason, message):
            new = copy.deepcopy(old)
            new.update(count=old.get("count", 1) + 1, lastTimestamp=stamp)
            store.replace_now(res, namespace, old["metadata"]["name"], new)
            return
    body = {
        "metadata": {"name": f"{ref['name']}.{secrets.token_hex(8)}", "namespace": namespace},
        "involvedObject": ref, "reason": reason, "message": message, "type": type_,
        "source": {"component": component}, "count": 1, "firstTimestamp": stamp,
        "lastTimestamp": stamp, "eventTime": None, "reportingComponent": component,
        "reportingInstance": "",
    }  # fmt: skip
    store.create_now(res, namespace, body)
