"""kube-proxy: Services and Endpoints become DNAT rules in every node of the cluster, as
kube-proxy's iptables mode does (ClusterIP:port -> a random ready endpoint; NodePort and
LoadBalancer addresses through `service_rules`).

It owns the `KUBE-*` chains of the nodes' `nat` and `filter` tables and nothing else (see
`owned_chains`): a Service event rewrites those chains with `iptables-restore --noflush`, the
jumps into them from the built-in chains are kept in place, and every `sync_period` seconds a
full resync (kube-proxy's `syncPeriod`) repairs them, so a rule someone else put in a built-in
chain (a CNI's, an operator's, a fault typed by hand) is never touched, and a flushed
`KUBE-SERVICES` comes back within one period. NetworkPolicy enforcement (`network_policy.py`)
owns its own chains of `mangle`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, ClassVar

from provisioning.lab.apiserver.model import Event
from provisioning.lab.controllers.base import Controller, LabContext
from provisioning.lab.controllers.service_rules import MASQ_MARK, Backend, Sections, external_rules
from provisioning.lab.owned_chains import ChainOwner, Jump, TableRules, Tables

log = logging.getLogger("netconform.lab.controllers")

SERVICES = "KUBE-SERVICES"
POSTROUTING = "KUBE-POSTROUTING"
#: kube-proxy's jumps from the built-in chains (pkg/proxy/iptables/proxier.go,
#: `iptablesJumpChains`), each kept in place with `iptables -C` / `-I`
JUMPS = (
    Jump("nat", "PREROUTING", SERVICES),
    Jump("nat", "OUTPUT", SERVICES),
    Jump("nat", "POSTROUTING", POSTROUTING),
    Jump("filter", "INPUT", SERVICES),
    Jump("filter", "FORWARD", SERVICES),
    Jump("filter", "OUTPUT", SERVICES),
)


class KubeProxy(Controller):
    name: ClassVar[str] = "kube-proxy"
    watches: ClassVar[frozenset[str]] = frozenset({"Service", "Endpoints"})

    def __init__(self) -> None:
        self._dirty: set[str] = set()
        self._full: set[str] = set()
        self._lock = asyncio.Lock()
        self.owner = ChainOwner(("KUBE-",), JUMPS)
        self._resync: asyncio.Task[None] | None = None

    async def start(self, lab: LabContext) -> None:
        await super().start(lab)
        self._resync = asyncio.get_running_loop().create_task(self._resync_loop())

    async def stop(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync

    async def on_event(self, cluster: str, event: Event) -> None:
        self._dirty.add(cluster)
        self.lab.tasks.spawn(self._sync())

    async def _resync_loop(self) -> None:
        """Every `sync_period`: a full sync of every cluster (kube-proxy's SyncLoop)."""
        while True:
            await asyncio.sleep(self.lab.sync_period)
            clusters = {r.name for r in self.lab.plan.regions}
            self._full |= clusters
            self._dirty |= clusters
            try:
                await self._sync()
            except Exception as err:  # a node gone meanwhile: the next period tries again
                log.warning("kube-proxy resync failed: %s", err)

    async def _sync(self) -> None:
        async with self._lock:
            while self._dirty:
                cluster = self._dirty.pop()
                full = cluster in self._full
                self._full.discard(cluster)
                await self.sync_cluster(cluster, full)

    async def sync_cluster(self, cluster: str, full: bool = False) -> None:
        """Write the cluster's Service rules into each of its nodes."""
        store = self.lab.store(cluster)
        services, endpoints = store.list("Service"), store.list("Endpoints")
        region = self.lab.region(cluster)
        for node in region.nodes:
            where = (node.name, node.ip)
            tables = proxy_rules(services, endpoints, where, region.vpc_cidr)
            await asyncio.to_thread(self.owner.write, node.netns, tables, full)


def proxy_rules(
    services: list[dict[str, Any]],
    endpoints: list[dict[str, Any]],
    node: tuple[str, str] | None = None,
    pods: str = "",
) -> Tables:
    """kube-proxy's iptables mode in miniature for `node` (name, ip): ClusterIP:port -> a
    random ready endpoint, plus the node's NodePorts and the LoadBalancer addresses.

    A Service port without endpoints is rejected (filter table), as kube-proxy does.
    """
    by_name = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoints}
    chains: list[str] = []
    nat_rules: list[str] = []
    reject_rules: list[str] = []
    external = Sections()
    for svc in services:
        cluster_ip = svc["spec"].get("clusterIP")
        if not cluster_ip or cluster_ip == "None":
            continue
        eps = by_name.get((svc["metadata"]["namespace"], svc["metadata"]["name"]))
        for port in svc["spec"].get("ports", []):
            proto = port.get("protocol", "TCP").lower()
            match = f"-d {cluster_ip}/32 -p {proto} --dport {port['port']}"
            backends = _backends(eps, port)
            if not backends:
                reject_rules.append(f"-A {SERVICES} {match} -j REJECT")
                external_rules(external, svc, port, None, [], node, pods)
                continue
            svc_chain = f"KUBE-SVC-{len(chains)}"
            chains.append(svc_chain)
            external_rules(external, svc, port, svc_chain, backends, node, pods)
            nat_rules.append(f"-A {SERVICES} {match} -j {svc_chain}")
            for i, backend in enumerate(backends):
                ip, target = backend.ip, backend.port
                sep = f"{svc_chain}-{i}"
                chains.append(sep)
                remaining = len(backends) - i
                pick = (
                    f"-m statistic --mode random --probability {1 / remaining:.5f} "
                    if remaining > 1
                    else ""
                )
                nat_rules += [
                    f"-A {svc_chain} {pick}-j {sep}",
                    # hairpin: a pod reaching itself through its Service is masqueraded
                    f"-A {sep} -s {ip}/32 -j MARK --set-xmark {MASQ_MARK}",
                    f"-A {sep} -p {proto} -j DNAT --to-destination {ip}:{target}",
                ]
    nat = TableRules(
        (SERVICES, POSTROUTING, *chains, *external.chains),
        (
            f"-A {POSTROUTING} -m mark --mark {MASQ_MARK} -j MASQUERADE",
            *nat_rules,
            *external.nat,
        ),
    )
    filt = TableRules((SERVICES, *external.filter_chains), (*reject_rules, *external.filter))
    return {"nat": nat, "filter": filt}


def _backends(eps: dict[str, Any] | None, port: dict[str, Any]) -> list[Backend]:
    """The ready addresses serving one Service port."""
    if not eps:
        return []
    result = []
    for subset in eps.get("subsets") or []:
        ports = subset.get("ports") or []
        named = [p["port"] for p in ports if p.get("name", "") == port.get("name", "")]
        numbers = named or [p["port"] for p in ports]
        if numbers:
            result += [
                Backend(addr["ip"], int(numbers[0]), addr.get("nodeName", ""))
                for addr in subset.get("addresses") or []
            ]
    return result
