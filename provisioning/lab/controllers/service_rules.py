"""kube-proxy's NodePort and LoadBalancer sections, rendered per node.

kube-proxy's iptables mode programs, next to each ClusterIP rule, the same Service port on the
node's own address at its nodePort and on every `status.loadBalancer.ingress[].ip` (so
in-cluster clients of a LoadBalancer are short-circuited to the endpoints, as upstream does).
`externalTrafficPolicy: Cluster` masquerades (the reply must come back through this node) and
spreads over every ready endpoint; `Local` keeps the client's address and uses only this node's
ready endpoints, dropping the traffic when there is none (a cloud LB's health check steers
around such nodes). `loadBalancerSourceRanges` drops other sources in the filter table, matched
on the connection's original destination because DNAT already rewrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MASQ_MARK = "0x4000/0x4000"


@dataclass(frozen=True)
class Backend:
    """One ready endpoint of a Service port."""

    ip: str
    port: int
    node: str


@dataclass
class Sections:
    """Lines kube-proxy adds for one node: extra chains, nat rules and filter rules."""

    chains: list[str] = field(default_factory=list)
    nat: list[str] = field(default_factory=list)
    filter: list[str] = field(default_factory=list)
    filter_chains: list[str] = field(default_factory=list)


def lb_addresses(svc: dict[str, Any]) -> list[str]:
    """The IPs in a Service's `status.loadBalancer.ingress`."""
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(i["ip"]) for i in ingress if i.get("ip")]


def external_rules(
    out: Sections,
    svc: dict[str, Any],
    port: dict[str, Any],
    svc_chain: str | None,
    backends: list[Backend],
    node: tuple[str, str] | None,
    pods: str = "",
) -> None:
    """The NodePort and LoadBalancer rules of one Service port on `node` (name, ip).

    `svc_chain` spreads over every ready endpoint (None when there is none). `pods` is the
    cluster's pod range: with `Local`, pods reaching the Service's external addresses are sent
    to every endpoint, as kube-proxy's "pod traffic for external destinations" rule does
    (pkg/proxy/iptables/proxier.go, via its local-traffic detector)."""
    spec = svc["spec"]
    proto = port.get("protocol", "TCP").lower()
    matches = [f"-d {ip}/32 -p {proto} --dport {port['port']}" for ip in lb_addresses(svc)]
    if port.get("nodePort") and node is not None:
        matches.append(f"-d {node[1]}/32 -p {proto} --dport {port['nodePort']}")
    if not matches:
        return
    local = spec.get("externalTrafficPolicy") == "Local"
    target = _local_chain(out, svc_chain, backends, node, proto) if local else svc_chain
    for match in matches:
        if target is None and local and pods and svc_chain is not None:
            out.nat.append(f"-A KUBE-SERVICES -s {pods} {match} -j {svc_chain}")
        if target is None:
            # kube-proxy: no endpoints -> reject; Local without one here -> drop
            verdict = "DROP" if local and backends else "REJECT"
            out.filter.append(f"-A KUBE-SERVICES {match} -j {verdict}")
            continue
        if not local:
            out.nat.append(f"-A KUBE-SERVICES {match} -j MARK --set-xmark {MASQ_MARK}")
        elif pods and svc_chain is not None:
            out.nat.append(f"-A KUBE-SERVICES -s {pods} {match} -j {svc_chain}")
        out.nat.append(f"-A KUBE-SERVICES {match} -j {target}")
    _source_ranges(out, svc, proto, int(port["port"]))


def _local_chain(
    out: Sections,
    svc_chain: str | None,
    backends: list[Backend],
    node: tuple[str, str] | None,
    proto: str,
) -> str | None:
    """A chain spreading over this node's ready endpoints only (None when it has none)."""
    mine = [b for b in backends if node is not None and b.node == node[0]]
    if not mine or svc_chain is None:
        return None
    chain = f"{svc_chain}-LOCAL"
    out.chains.append(chain)
    for i, backend in enumerate(mine):
        remaining = len(mine) - i
        pick = (
            f"-m statistic --mode random --probability {1 / remaining:.5f} "
            if remaining > 1
            else ""
        )
        out.nat.append(
            f"-A {chain} {pick}-p {proto} -j DNAT --to-destination {backend.ip}:{backend.port}"
        )
    return chain


def _source_ranges(out: Sections, svc: dict[str, Any], proto: str, number: int) -> None:
    """Sources outside `loadBalancerSourceRanges` dropped on the LB addresses."""
    ranges = svc["spec"].get("loadBalancerSourceRanges") or []
    if not ranges:
        return
    chain = f"KUBE-FW-{len(out.filter_chains)}"
    out.filter_chains.append(chain)
    out.filter += [
        f"-A KUBE-SERVICES -p {proto} -m conntrack --ctorigdst {ip}/32 "
        f"--ctorigdstport {number} -j {chain}"
        for ip in lb_addresses(svc)
    ]
    out.filter += [f"-A {chain} -s {cidr} -j RETURN" for cidr in ranges]
    out.filter.append(f"-A {chain} -j DROP")
