"""Faults on demand: break one thing in the lab, remember how to undo it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netconform.errors import LabError, NetconformError
from provisioning.lab import firewall, network, service_faults
from provisioning.lab.controllers.base import LabContext, PodTable
from provisioning.lab.network import LabPlan

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class ActiveFault:
    name: str
    args: tuple[str, ...]
    undo: Callable[[], None]

    def describe(self) -> str:
        return " ".join((self.name, *self.args))


class FaultBook:
    """Applies named faults and heals them all, in reverse order."""

    def __init__(self, plan: LabPlan, pods: PodTable, lab: LabContext | None = None) -> None:
        self.plan = plan
        self.pods = pods
        self.lab = lab
        self.api = lab.api if lab is not None else None
        self._active: list[ActiveFault] = []
        self._faults: dict[str, tuple[int, Callable[..., Callable[[], None]]]] = {
            "cut-peering": (2, self._cut_peering),
            "blackhole-pod": (1, self._blackhole_pod),
            "transit": (3, self._transit),
            "policy-off": (1, self._policy_off),
            "lb-down": (1, lambda svc: service_faults.lb_down(self.api, plan, svc)),
            "lb-stale": (1, lambda svc: service_faults.lb_stale(self.api, plan, svc)),
            "nodeport-off": (1, lambda node: service_faults.nodeport_off(plan, node)),
            "firewall-close": (3, lambda a, b, port: firewall.close_port(plan, a, b, _int(port))),
            "loss": (3, lambda a, b, pct: firewall.loss(plan, a, b, _num(pct))),
            "mtu": (3, lambda a, b, size: firewall.mtu(plan, a, b, _int(size))),
            "icmp-drop": (2, lambda a, b: firewall.icmp_drop(plan, a, b)),
            "snat": (2, lambda a, b: firewall.snat(plan, a, b)),
        }
        self._extra = lab.faults if lab is not None else {}  # the controllers' faults

    @property
    def names(self) -> tuple[str, ...]:
        return (*self._faults, *self._extra)

    def active(self) -> list[str]:
        return [fault.describe() for fault in self._active]

    def apply(self, name: str, args: list[str]) -> str:
        table = {**self._faults, **self._extra}
        if name not in table:
            raise LabError(f"unknown fault {name!r} (known: {', '.join(table)})")
        arity, make = table[name]
        if len(args) != arity:
            raise LabError(f"fault {name} takes {arity} argument(s), got {len(args)}")
        undo = make(*args)
        fault = ActiveFault(name, tuple(args), undo)
        self._active.append(fault)
        return fault.describe()

    def heal(self) -> list[str]:
        """Undo every fault, newest first; one that cannot be undone does not stop the rest."""
        healed, failed = [], []
        while self._active:
            fault = self._active.pop()
            try:
                fault.undo()
            except NetconformError as err:
                failed.append(f"{fault.describe()}: {err}")
                continue
            healed.append(fault.describe())
        if failed:
            raise LabError(f"healed {healed or 'nothing'}; could not heal: {'; '.join(failed)}")
        return healed

    def _cut_peering(self, a: str, b: str) -> Callable[[], None]:
        network.set_peering(self.plan, a, b, active=False)
        return lambda: network.set_peering(self.plan, a, b, active=True)

    def _transit(self, src: str, dst: str, via: str) -> Callable[[], None]:
        network.set_transit(self.plan, src, dst, via)
        return lambda: network.set_transit(self.plan, src, dst, None)

    def _blackhole_pod(self, pod: str) -> Callable[[], None]:
        state = self.pods.by_name(pod)
        node_ns, ip, dev = state.node.netns, state.ip, state.dev
        network.ip_batch(node_ns, [f"route replace blackhole {ip}/32"])

        def undo() -> None:
            if any(p is state for p in self.pods.values()):  # deleted: route gone too
                network.ip_batch(node_ns, [f"route replace {ip}/32 dev {dev}"])

        return undo

    def _policy_off(self, cluster: str) -> Callable[[], None]:
        """NetworkPolicy enforcement stops in `cluster` (its rules flushed) until healed."""
        lab = self.lab
        if lab is None:
            raise LabError("policy-off needs the lab's controllers")
        self.plan.region(cluster)  # an unknown cluster is an error before anything changes
        if cluster in lab.policy_off:
            raise LabError(f"policy enforcement is already off in {cluster}")

        def resync() -> None:
            for hook in lab.resync_hooks:
                hook(cluster)

        lab.policy_off.add(cluster)
        resync()

        def undo() -> None:
            lab.policy_off.discard(cluster)
            resync()

        return undo


def _int(word: str) -> int:
    if not word.isdigit():
        raise LabError(f"expected a whole number, got {word!r}")
    return int(word)


def _num(word: str) -> float:
    try:
        return float(word)
    except ValueError:
        raise LabError(f"expected a number, got {word!r}") from None
