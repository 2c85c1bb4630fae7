"""The inter-region firewall: the region routers enforce the topology's ports between the
pod subnets, as security groups, VPC firewall rules and NSGs do (`provisioning/lab/firewall.py`
has the rules and what passes besides them).

It watches no kinds: the rules come from the lab's topology and are written once, before the
API listens; faults (`firewall-close`) add rules on top and heal deletes exactly those.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, Final

from netconform.topology import DEFAULT_REQUIRED_PORTS
from provisioning.lab import firewall
from provisioning.lab.apiserver.model import Event
from provisioning.lab.controllers.base import Controller, LabContext

#: The lab's ports (its topology file says the same): seed 000's required ports open, and
#: SSH between pod subnets declared closed, so the suite has a closed port to prove.
LAB_REQUIRED_PORTS: Final[tuple[int, ...]] = DEFAULT_REQUIRED_PORTS
LAB_CLOSED_PORTS: Final[tuple[int, ...]] = (22,)


class Firewall(Controller):
    name: ClassVar[str] = "firewall"
    watches: ClassVar[frozenset[str]] = frozenset()

    async def start(self, lab: LabContext) -> None:
        await super().start(lab)
        await asyncio.to_thread(firewall.program, lab.plan, LAB_REQUIRED_PORTS, LAB_CLOSED_PORTS)

    async def on_event(self, cluster: str, event: Event) -> None:
        """Nothing: the rules follow the topology, not API objects."""
