"""Which candidate a case belongs to: directions and ports between clusters, Services, nodes,
pods, DNS, load balancers, and the policy oracle's own verdicts read from its words."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence

from netconform.diagnosis.model import Seen
from netconform.outcomes import Case, Endpoint, Served
from netconform.topology import Topology

#: destination kinds reached over the path between clusters (a world address is not)
_PEERED_KINDS = frozenset({"pod", "nodeport", "service-name", "dns-name"})
_DNS = frozenset({"dns"})


def down_directions(cases: Iterable[Case]) -> frozenset[tuple[str, str]]:
    """(source, destination) cluster pairs between whose pods every path-needing probe
    failed (at least two): what convergence elsewhere in the run need not wait for."""
    verdicts: dict[tuple[str, str], list[bool]] = {}
    for case in cases:
        src, dst = case.source, case.destination
        seen = Seen("", case)
        if src.kind == dst.kind == "pod" and src.cluster != dst.cluster and seen.needs_path:
            verdicts.setdefault((src.cluster, dst.cluster), []).append(seen.failed)
    return frozenset(k for k, v in verdicts.items() if len(v) > 1 and all(v))


def _down_directions(seen: Sequence[Seen], peered: Callable[[Seen], bool]) -> set[str]:
    """`a->b` directions whose every path-needing peered case failed."""
    verdicts: dict[str, bool] = {}
    for s in seen:
        if s.needs_path and peered(s):
            key = _direction(s)
            verdicts[key] = verdicts.get(key, True) and s.failed
    return {k for k, down in verdicts.items() if down}


_DENIED = re.compile(
    r"\b(ingress|egress) of ([\w.-]+/[\w.-]+)/[\w.-]+ denied by ([^(]+?) "
    r"\(no rule of .*? admits ([\w.-]+/[\w.-]+)/[\w.-]+ on"
)
"""A NetworkPolicy verdict, as the oracle words it (netconform.policy.evaluate, `why`):
`egress of east/east/probe-0-0 denied by deny-all (no rule of it admits west/west/p on ...)`;
labels are cluster/namespace/pod."""
_ALLOWED = re.compile(r"\ballowed ([\w.-]+/[\w.-]+)/[\w.-]+ -> ([\w.-]+/[\w.-]+)/[\w.-]+ on")


def _judged_ends(detail: str) -> tuple[str, str, dict[str, str]] | None:
    """(source place, destination place, direction -> denying policies) of a case the policy
    oracle judged, read from its words; None for a case it did not judge."""
    allowed = _ALLOWED.search(detail)
    if allowed:
        return allowed.group(1), allowed.group(2), {}
    denials = _DENIED.findall(detail)
    if not denials:
        return None
    ends = {"egress": ("", ""), "ingress": ("", "")}
    for direction, subject, _names, peer in denials:
        ends[direction] = (subject, peer) if direction == "egress" else (peer, subject)
    src = ends["egress"][0] or ends["ingress"][0]
    dst = ends["egress"][1] or ends["ingress"][1]
    return src, dst, {d: names for d, _subject, names, _peer in denials}


def _policy_denials(seen: Sequence[Seen], direction: str) -> dict[str, str]:
    """Namespaces (`cluster/namespace`) whose every policy-judged case the oracle says a
    NetworkPolicy denies in `direction` (egress: of its pods as sources; ingress: as
    destinations) -> the policies. That is the policy check's evidence that the pods there
    are cut off on purpose."""
    judged: dict[str, list[str]] = {}
    for s in seen:
        ends = _judged_ends(s.case.detail)
        if ends is None:
            continue
        src, dst, denied = ends
        judged.setdefault(src if direction == "egress" else dst, []).append(
            denied.get(direction, "")
        )
    return {c: ", ".join(sorted(set(n))) for c, n in judged.items() if n and all(n)}


Place = Callable[[Endpoint], str]


def _namespace_of(topology: Topology) -> Place:
    """`cluster/namespace` of a pod: a `namespace/name` name says it, else the region's."""
    region = {str(c.name): str(c.namespace) for c in topology.clusters}

    def place(end: Endpoint) -> str:
        namespace = end.name.split("/")[0] if "/" in end.name else region.get(end.cluster, "")
        return f"{end.cluster}/{namespace}"

    return place


# --- scopes: which candidate a case belongs to ---------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SERVER = re.compile(r"\(server ([0-9a-fA-F.:]+)\)")
"""The server a DNS probe asked, as netconform.probes.dns words its detail."""


def _ranges(topology: Topology, services_only: bool = False) -> dict[str, list[Network]]:
    found: dict[str, list[Network]] = {}
    for cluster in topology.clusters:
        nets = [*cluster.service_cidrs] if services_only else [
            *cluster.pod_cidrs, *cluster.service_cidrs]  # fmt: skip
        found[str(cluster.name)] = [ipaddress.ip_network(n, strict=False) for n in nets]
    return found


def _inside(address: str, nets: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in nets)


def _peered(topology: Topology) -> Callable[[Seen], bool]:
    """Whether a case crosses the path between two clusters (a world address does not: on a
    VPC it leaves through the gateway, not the peering)."""
    ranges = _ranges(topology)

    def peered(s: Seen) -> bool:
        src, dst = s.case.source, s.case.destination
        if not src.cluster or not dst.cluster or src.cluster == dst.cluster:
            return False
        return dst.kind in _PEERED_KINDS or _inside(dst.ip, ranges.get(dst.cluster, []))

    return peered


def dns_server(case: Case) -> str:
    """The DNS server a dns case asked ("" when its detail does not say: the pod's own)."""
    found = _SERVER.search(case.detail)
    return found.group(1) if found else ""


def _own_dns(topology: Topology) -> Callable[[Seen], bool]:
    """Whether a lookup went through its source cluster's own DNS (its resolver, or a server
    in its Service range), not straight to another cluster's DNS load balancer."""
    services = _ranges(topology, services_only=True)

    def own(s: Seen) -> bool:
        server = dns_server(s.case)
        return not server or _inside(server, services.get(s.case.source.cluster, []))

    return own


def _backend_namespace(case: Case) -> str:
    """`cluster/namespace` of the Service an Ingress case expects to answer ("" if none)."""
    backend = case.expected.backend if isinstance(case.expected, Served) else ""
    return f"{case.destination.cluster}/{backend.split('/')[0]}" if "/" in backend else ""


def _name_namespace(dst: Endpoint) -> str:
    """`cluster/namespace` of a Service dialled by name (`echo.east.svc.cluster.local`)."""
    parts = dst.name.split(".")
    return f"{dst.cluster}/{parts[1]}" if len(parts) > 2 else f"{dst.cluster}/"


def _world(s: Seen, peered: Callable[[Seen], bool]) -> bool:
    """A case from a pod of one cluster to another cluster's world (public) address."""
    src, dst = s.case.source, s.case.destination
    return src.kind == "pod" and bool(dst.cluster) and src.cluster != dst.cluster and not peered(s)


def _direction(s: Seen) -> str:
    return f"{s.case.source.cluster}->{s.case.destination.cluster}"


def _transport(protocol: str) -> str:
    return "udp" if protocol in ("udp", "dns") else "tcp"


def _port(s: Seen) -> str | None:
    case = s.case
    if not case.port or case.protocol in ("icmp", "mtu") or case.destination.kind != "pod":
        return None
    return f"{_direction(s)} {_transport(case.protocol)}/{case.port}"


def _service(s: Seen) -> str | None:
    """A Service, however it is reached (ClusterIP, NodePort, LoadBalancer)."""
    dst = s.case.destination
    if dst.kind not in ("service", "nodeport", "loadbalancer"):
        return None
    return f"{dst.cluster}/{dst.name}"


def _destination_node(s: Seen) -> str | None:
    dst = s.case.destination
    return f"{dst.cluster}/{dst.node}" if dst.kind == "pod" and dst.node else None


def _source_node(s: Seen) -> str | None:
    src = s.case.source
    return f"{src.cluster}/{src.node}" if src.kind == "pod" and src.node else None


def _nodeport_node(s: Seen) -> str | None:
    dst = s.case.destination
    return f"{dst.cluster}/{dst.node}" if dst.kind == "nodeport" and dst.node else None


def _destination_pod(s: Seen) -> str | None:
    dst = s.case.destination
    return f"{dst.cluster}/{dst.name}" if dst.kind == "pod" else None


def _resolves(s: Seen) -> bool:
    """A case that needs a lookup: a DNS probe, or a Service dialled by its name."""
    return s.case.protocol in _DNS or s.case.destination.kind == "service-name"


def _dns_from(s: Seen) -> str | None:
    """Lookups through a cluster's own DNS: every name asked from its pods."""
    src = s.case.source
    return src.cluster if _resolves(s) and src.kind == "pod" and src.cluster else None


def _dns_of_zone(s: Seen) -> str | None:
    """Lookups of a cluster's names from other clusters (their stubs, its DNS LB)."""
    src, dst = s.case.source, s.case.destination
    if not _resolves(s) or src.kind != "pod" or not dst.cluster or src.cluster == dst.cluster:
        return None
    return dst.cluster


def _load_balancer(s: Seen) -> str | None:
    dst = s.case.destination
    return f"{dst.cluster}/{dst.name} ({dst.ip})" if dst.kind == "loadbalancer" else None


def _ingress_address(s: Seen) -> str | None:
    dst = s.case.destination
    return f"{dst.cluster} ({dst.ip})" if dst.kind == "ingress" else None
