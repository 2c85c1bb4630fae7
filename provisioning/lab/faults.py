"""Faults on demand: break one thing in the lab, remember how to undo it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from netconform.errors import LabError, NetconformError
from provisioning.lab import firewall, layouts, network, service_faults
from provisioning.lab.controllers.base import LabContext, PodTable
from provisioning.lab.network import LabPlan

#: The NetworkPolicy `policy-extra-deny` creates (and heal deletes).
EXTRA_DENY = "netconform-fault-deny-all"


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
            "policy-extra-deny": (1, self._policy_extra_deny),
            "gateway-snat": (2, lambda cluster, state: layouts.gateway_snat(plan, cluster, state)),
        }
        self._extra = lab.faults if lab is not None else {}  # the controllers' faults
        try:  # the daemon builds the book in its loop; API objects change only there
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

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

    def _policy_extra_deny(self, where: str) -> Callable[[], None]:
        """A deny-all NetworkPolicy (ingress and egress) in CLUSTER/NS, made through the API
        as a user would; heal deletes it."""
        lab, (cluster, _, namespace) = self.lab, where.partition("/")
        if lab is None or self._loop is None:
            raise LabError("policy-extra-deny needs the lab's API servers")
        self.plan.region(cluster)  # an unknown cluster is an error before anything changes
        if not namespace:
            raise LabError(f"policy-extra-deny {where!r}: expected CLUSTER/NAMESPACE")
        store = lab.store(cluster)
        if store.get("Namespace", None, namespace) is None:
            raise LabError(f"policy-extra-deny: no namespace {namespace!r} in {cluster}")
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": EXTRA_DENY, "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        }
        self._in_loop(store.create("NetworkPolicy", namespace, body))

        def undo() -> None:
            if store.get("NetworkPolicy", namespace, EXTRA_DENY) is not None:
                self._in_loop(store.delete("NetworkPolicy", namespace, EXTRA_DENY))

        return undo

    def _in_loop(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run an API mutation in the daemon's loop (faults run in a worker thread)."""
        assert self._loop is not None
        try:
            asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)
        except Exception as err:  # an ApiError (409 exists, 404 gone) or a timeout
            raise LabError(f"API call failed: {err}") from None


def _int(word: str) -> int:
    if not word.isdigit():
        raise LabError(f"expected a whole number, got {word!r}")
    return int(word)


def _num(word: str) -> float:
    try:
        return float(word)
    except ValueError:
        raise LabError(f"expected a number, got {word!r}") from None
