"""Scheduler and kubelet events of a pod's life that the API objects alone show: Scheduled when
a pod is bound to a node, Killing when a running pod is deleted (the kubelet records Pulled,
Created and Started itself, when the pod really runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from provisioning.lab.apiserver.events import record_event
from provisioning.lab.apiserver.model import Event, Obj
from provisioning.lab.controllers.base import SettlingController

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


class PodEvents(SettlingController):
    name: ClassVar[str] = "pod-events"
    watches: ClassVar[frozenset[str]] = frozenset({"Pod"})

    def __init__(self) -> None:
        self._pending: list[tuple[Obj, str, str, str]] = []

    def observe(self, store: Store, event: Event) -> None:
        pod, m = event.obj, event.obj["metadata"]
        node = pod["spec"].get("nodeName")
        if event.type == "ADDED" and node:
            message = f"Successfully assigned {m['namespace']}/{m['name']} to {node}"
            self._pending.append((pod, "Scheduled", message, "default-scheduler"))
        elif event.type == "DELETED" and (pod.get("status") or {}).get("phase") == "Running":
            for c in pod["spec"].get("containers") or []:
                self._pending.append((pod, "Killing", f"Stopping container {c['name']}",
                                      "kubelet"))  # fmt: skip

    def reconcile(self, store: Store) -> bool:
        if not self._pending:
            return False
        pod, reason, message, component = self._pending.pop(0)
        record_event(store, pod, reason, message, component)
        return True
