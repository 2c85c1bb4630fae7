"""kube-proxy: Services and Endpoints become DNAT rules in every node of the cluster, as
kube-proxy's iptables mode does (ClusterIP:port -> a random ready endpoint; NodePort and
LoadBalancer addresses through `service_rules`).

It owns the nodes' `nat` and `filter` tables and rewrites them whole; NetworkPolicy enforcement
(`network_policy.py`) owns `mangle`, so neither wipes the other's rules."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from provisioning.lab import network
from provisioning.lab.apiserver.model import Event
from provisioning.lab.controllers.base import Controller
from provisioning.lab.controllers.service_rules import Backend, Sections, external_rules


class KubeProxy(Controller):
    name: ClassVar[str] = "kube-proxy"
    watches: ClassVar[frozenset[str]] = frozenset({"Service", "Endpoints"})

    def __init__(self) -> None:
        self._dirty: set[str] = set()
        self._lock = asyncio.Lock()

    async def on_event(self, cluster: str, event: Event) -> None:
        self._dirty.add(cluster)
        self.lab.tasks.spawn(self._sync())

    async def _sync(self) -> None:
        async with self._lock:
            while self._dirty:
                cluster = self._dirty.pop()
                store = self.lab.store(cluster)
                services, endpoints = store.list("Service"), store.list("Endpoints")
                region = self.lab.region(cluster)
                for node in region.nodes:
                    where = (node.name, node.ip)
                    rules = proxy_rules(services, endpoints, where, region.vpc_cidr)
                    await asyncio.to_thread(network.iptables_restore, node.netns, rules)


def proxy_rules(
    services: list[dict[str, Any]],
    endpoints: list[dict[str, Any]],
    node: tuple[str, str] | None = None,
    pods: str = "",
) -> str:
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
                reject_rules.append(f"-A LAB-SERVICES {match} -j REJECT")
                external_rules(external, svc, port, None, [], node, pods)
                continue
            svc_chain = f"LAB-SVC-{len(chains)}"
            chains.append(svc_chain)
            external_rules(external, svc, port, svc_chain, backends, node, pods)
            nat_rules.append(f"-A LAB-SERVICES {match} -j {svc_chain}")
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
                    f"-A {sep} -s {ip}/32 -j MARK --set-xmark 0x4000/0x4000",
                    f"-A {sep} -p {proto} -j DNAT --to-destination {ip}:{target}",
                ]
    nat = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":LAB-SERVICES - [0:0]",
        *(f":{c} - [0:0]" for c in chains + external.chains),
        "-A PREROUTING -j LAB-SERVICES",
        "-A OUTPUT -j LAB-SERVICES",
        "-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE",
        *nat_rules,
        *external.nat,
        "COMMIT",
    ]
    filt = [
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":LAB-SERVICES - [0:0]",
        *(f":{c} - [0:0]" for c in external.filter_chains),
        "-A INPUT -j LAB-SERVICES",
        "-A FORWARD -j LAB-SERVICES",
        "-A OUTPUT -j LAB-SERVICES",
        *reject_rules,
        *external.filter,
        "COMMIT",
    ]
    return "\n".join(nat + filt) + "\n"


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
