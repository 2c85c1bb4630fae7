"""Runs the asynchronous controllers of a registry: start, deliver events by kind, stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from provisioning.lab.apiserver.model import Event
from provisioning.lab.controllers.base import Controller, ControllerClass, LabContext

log = logging.getLogger("netconform.lab.controllers")


class ControllerSet:
    """One instance of every asynchronous controller in `registry` (settling ones are the
    stores' business: see `LabApiServer`)."""

    def __init__(self, registry: Iterable[ControllerClass]) -> None:
        self.controllers: list[Controller] = [
            cls() for cls in registry if issubclass(cls, Controller)
        ]

    async def start(self, lab: LabContext) -> None:
        """Start every controller, in registry order."""
        for controller in self.controllers:
            await controller.start(lab)

    async def deliver(self, cluster: str, event: Event) -> None:
        """API server subscriber: `event` to each controller watching its kind."""
        for controller in self.controllers:
            if event.kind not in controller.watches:
                continue
            try:
                await controller.on_event(cluster, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: %s failed on %s %s", cluster, controller.name, event.type,
                              event.kind)  # fmt: skip

    async def stop(self) -> None:
        """Stop every controller, in reverse order; one failing does not keep the others."""
        for controller in reversed(self.controllers):
            try:
                await controller.stop()
            except Exception:
                log.exception("stopping %s failed", controller.name)
