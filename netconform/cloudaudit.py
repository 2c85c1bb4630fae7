"""Read-only cloud audits as pure checks over a snapshot of what a cloud reported.

Each cloud module turns its API answers into a `Snapshot` (peerings, route tables, firewall
rules, normalised); the checks here are the same for AWS, GCP and Azure. Every finding
names the cloud, the cluster pair, the resource and, for rules, the port:
`aws central->east: route table rtb-123 in ca-central-1 has no route to 10.102.0.0/16
(peer east)`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from itertools import combinations, permutations

from netconform.cidr import overlaps
from netconform.topology import Cluster

IPv4 = ipaddress.IPv4Network


@dataclass(frozen=True)
class AuditFinding:
    """One thing wrong, in words a person can act on."""

    cloud: str
    """aws, gcp or azure."""
    pair: str
    """`central->east` (direction matters for routes and ports)."""
    resource: str
    """What was inspected: `route table rtb-123 in ca-central-1`."""
    port: int | None
    """The TCP port for rule findings, None otherwise."""
    message: str
    """The full line, starting with cloud and pair."""

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class PeeringView:
    """A peering as seen from one side (AWS: one connection gives two views)."""

    local: str
    """Cluster whose network holds this side."""
    remote: str
    """Cluster on the other end."""
    id: str
    """Identifier routes point at: `pcx-123`, a GCP or Azure peering name."""
    label: str
    """For messages: `peering pcx-123 (ca-central-1 -> us-east-2)`."""
    state: str
    """The cloud's own word: active, pending-acceptance, ACTIVE, INACTIVE, Connected..."""
    active: bool
    """True when traffic can flow on this side."""
    problem: str = ""
    """Why an active-looking peering is still not usable (Azure: forwarded traffic off)."""


@dataclass(frozen=True)
class Route:
    """One route: where it goes and through what."""

    destination: str
    """Destination CIDR."""
    target: str
    """Next hop id: a peering id, `igw-1`, `local`..."""
    active: bool = True
    """False for AWS blackhole routes."""


@dataclass(frozen=True)
class RouteTable:
    """Routes that apply to a cluster's subnets (AWS table, GCP network, Azure VNet peering)."""

    cluster: str
    """Whose subnets use it."""
    label: str
    """For messages: `route table rtb-123 in ca-central-1`."""
    routes: tuple[Route, ...]
    """Its routes."""


@dataclass(frozen=True)
class PortRange:
    """An inclusive TCP port range; `PortRange(0, 65535)` for all."""

    first: int
    last: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last


ALL_PORTS = (PortRange(0, 65535),)


@dataclass(frozen=True)
class Rule:
    """An inbound rule protecting a cluster's nodes/pods, normalised across clouds."""

    cluster: str
    """The destination cluster it protects."""
    name: str
    """Rule or group id for messages."""
    sources: tuple[str, ...]
    """Source CIDRs (`0.0.0.0/0` for any)."""
    ports: tuple[PortRange, ...] = ALL_PORTS
    """TCP ports it matches."""
    allow: bool = True
    """Allow or deny."""
    priority: int = 0
    """Lower is evaluated first (GCP, Azure); AWS rules all allow, priority 0."""


@dataclass(frozen=True)
class Snapshot:
    """What one cloud reported about the clusters' networks, read-only."""

    cloud: str
    """aws, gcp or azure."""
    clusters: tuple[Cluster, ...]
    """The clusters audited, in topology order."""
    peerings: tuple[PeeringView, ...] = ()
    """Every non-deleted peering view between the clusters' networks."""
    route_tables: tuple[RouteTable, ...] = ()
    """Route tables per cluster."""
    rules: tuple[Rule, ...] = ()
    """Inbound rules per destination cluster."""
    firewall_labels: dict[str, str] = field(default_factory=dict)
    """Cluster -> what holds its rules, for messages (`security group sg-1 in us-east-2`)."""
    rule_sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Cluster -> source CIDRs its peers' traffic comes from (pod ranges or address space)."""
    route_destinations: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Cluster -> CIDRs a peer must route to it."""
    shared: frozenset[frozenset[str]] = frozenset()
    """Pairs that share one network: no peering or routes needed (GCP)."""


def _finding(
    snap: Snapshot, pair: str, resource: str, message: str, port: int | None = None
) -> AuditFinding:
    return AuditFinding(snap.cloud, pair, resource, port, f"{snap.cloud} {pair}: {message}")


def audit_overlap(cloud: str, a: Cluster, b: Cluster) -> list[AuditFinding]:
    """Findings for every overlapping range between two clusters."""
    pair = f"{a.name}->{b.name}"
    return [
        AuditFinding(cloud, pair, f"{o.a_cidr} / {o.b_cidr}", None, f"{cloud} {pair}: {o.message}")
        for o in overlaps(a, b)
    ]


def _is_shared(snap: Snapshot, a: str, b: str) -> bool:
    return frozenset((a, b)) in snap.shared


def _views(snap: Snapshot, local: str, remote: str) -> list[PeeringView]:
    return [p for p in snap.peerings if p.local == local and p.remote == remote]


def audit_peering(snap: Snapshot, a: str, b: str) -> list[AuditFinding]:
    """The pair's peering exists and is active on both sides."""
    if _is_shared(snap, a, b):
        return []
    pair = f"{a}->{b}"
    found: list[AuditFinding] = []
    for local, remote in ((a, b), (b, a)):
        views = _views(snap, local, remote)
        if not views:
            found.append(
                _finding(
                    snap,
                    pair,
                    f"network of {local}",
                    f"no peering from {local}'s network to {remote}'s",
                )
            )
            continue
        if any(v.active and not v.problem for v in views):
            continue
        for v in views:
            why = v.problem or f"is {v.state}, not active"
            found.append(_finding(snap, pair, v.label, f"{v.label} on {local}'s side {why}"))
    return _dedupe(found)


def _dedupe(found: list[AuditFinding]) -> list[AuditFinding]:
    seen: set[str] = set()
    result = []
    for f in found:
        if f.message not in seen:
            seen.add(f.message)
            result.append(f)
    return result


def audit_routes(snap: Snapshot, src: str, dst: str) -> list[AuditFinding]:
    """Every route table of `src` routes each of `dst`'s ranges through their peering."""
    if _is_shared(snap, src, dst):
        return []
    pair = f"{src}->{dst}"
    tables = [t for t in snap.route_tables if t.cluster == src]
    if not tables:
        return [_finding(snap, pair, f"network of {src}", f"no route tables found for {src}")]
    targets = {v.id for v in snap.peerings if {v.local, v.remote} == {src, dst}}
    found = []
    for table in tables:
        for cidr in snap.route_destinations.get(dst, ()):
            problem = _route_problem(table, cidr, targets)
            if problem:
                msg = f"{table.label} {problem} (peer {dst})"
                found.append(_finding(snap, pair, table.label, msg))
    return found


def _route_problem(table: RouteTable, cidr: str, targets: set[str]) -> str:
    net = IPv4(cidr)
    matching = [
        r
        for r in table.routes
        if net.subnet_of(IPv4(r.destination)) and IPv4(r.destination).prefixlen > 0
    ]
    if not matching:
        return f"has no route to {cidr}"
    best = max(matching, key=lambda r: IPv4(r.destination).prefixlen)
    if best.target not in targets:
        via = ", ".join(sorted(targets)) or "none"
        return f"routes {cidr} to {best.target}, not to the pair's peering ({via})"
    if not best.active:
        return f"has a blackhole route to {cidr} via {best.target}"
    return ""


def audit_port(snap: Snapshot, src: str, dst: str, port: int) -> list[AuditFinding]:
    """`dst`'s inbound rules allow TCP `port` from every source range of `src`."""
    pair = f"{src}->{dst}"
    label = snap.firewall_labels.get(dst, f"firewall of {dst}")
    rules = sorted((r for r in snap.rules if r.cluster == dst), key=lambda r: r.priority)
    found = []
    for cidr in snap.rule_sources.get(src, ()):
        verdict = _evaluate(rules, cidr, port)
        if verdict:
            msg = f"{label} {verdict} tcp/{port} from {cidr} (peer {src})"
            found.append(_finding(snap, pair, label, msg, port))
    return found


def _evaluate(rules: list[Rule], cidr: str, port: int) -> str:
    """'' when allowed; otherwise why not. First matching rule by priority wins."""
    net = IPv4(cidr)
    for rule in rules:
        if not any(port in r for r in rule.ports):
            continue
        srcs = [IPv4(s) for s in rule.sources]
        if not rule.allow and any(net.overlaps(s) for s in srcs):
            return f"denies (rule {rule.name}, priority {rule.priority})"
        if rule.allow and any(net.subnet_of(s) for s in srcs):
            return ""
    return "does not allow"


@dataclass(frozen=True)
class AuditCase:
    """One preflight check, parametrized from the topology (no cloud call to build it)."""

    kind: str
    """overlap, peering, routes or port."""
    cloud: str
    """aws, gcp or azure."""
    src: str
    """Source cluster (the first of the pair for overlap and peering)."""
    dst: str
    """Destination cluster."""
    port: int | None = None
    """TCP port, for `port` cases."""

    @property
    def id(self) -> str:
        suffix = f":{self.port}" if self.port is not None else ""
        return f"{self.cloud}:{self.src}->{self.dst}{suffix}"

    def __repr__(self) -> str:
        """Reports (Allure parameters) show `lab:east->west:9092`, not the dataclass repr."""
        return self.id


def audit_cases(
    cloud: str, clusters: tuple[Cluster, ...], ports: tuple[int, ...]
) -> list[AuditCase]:
    """Every check for one cloud's clusters: pairs for overlap/peering, directions for the rest."""
    cases = [
        AuditCase(kind, cloud, a.name, b.name)
        for kind in ("overlap", "peering")
        for a, b in combinations(clusters, 2)
    ]
    cases += [AuditCase("routes", cloud, a.name, b.name) for a, b in permutations(clusters, 2)]
    cases += [
        AuditCase("port", cloud, a.name, b.name, p)
        for a, b in permutations(clusters, 2)
        for p in ports
    ]
    return cases


def run_case(snap: Snapshot, case: AuditCase) -> list[AuditFinding]:
    """The findings of one case against a snapshot; empty means it passed."""
    if case.kind == "overlap":
        by_name: dict[str, Cluster] = {c.name: c for c in snap.clusters}
        return audit_overlap(snap.cloud, by_name[case.src], by_name[case.dst])
    if case.kind == "peering":
        return audit_peering(snap, case.src, case.dst)
    if case.kind == "routes":
        return audit_routes(snap, case.src, case.dst)
    if case.kind == "port" and case.port is not None:
        return audit_port(snap, case.src, case.dst, case.port)
    raise ValueError(f"unknown audit case kind {case.kind!r}")


def run_all(snap: Snapshot, ports: tuple[int, ...]) -> list[tuple[AuditCase, list[AuditFinding]]]:
    """Every case for the snapshot's clusters, with its findings."""
    return [(case, run_case(snap, case)) for case in audit_cases(snap.cloud, snap.clusters, ports)]


def allows(rules: list[Rule], cidr: str, port: int) -> bool:
    """True when `rules` (any order) let TCP `port` in from every address of `cidr`."""
    return not _evaluate(sorted(rules, key=lambda r: r.priority), cidr, port)
