"""One diagnosis per run, across suites: the fewest broken things that explain every failure.

After every check is judged, the diagnosis reads all their cases (passes too: a pass is the
evidence that rules a candidate out) and names explanations in the order a network engineer
looks: a region pair whose every peered probe fails (peering, routes, firewall between them)
before a single port between them; a Service that refuses every source (no ready endpoint)
before the path to it; one node before its pods; a cluster's DNS before its records; a load
balancer before what is behind it. A candidate is named only when no case contradicts it (a
path-needing case of its own scope that passed), and it covers the failures no earlier
explanation covered. What is left is said per check, as unexplained.

Pure: cases in, findings out. The pytest side (`fixtures.diagnose`) prints it first in the
terminal summary, attaches it first in the report, and leads every failure text with it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from netconform.outcomes import TIMEOUT, Case, Endpoint, Served, Verdict
from netconform.topology import Topology

#: destination kinds reached over the path between clusters (a world address is not)
_PEERED_KINDS = frozenset({"pod", "nodeport", "service-name", "dns-name"})
_DNS = frozenset({"dns"})


@dataclass(frozen=True)
class Seen:
    """One case of one check, as the diagnosis reads it."""

    check: str
    case: Case

    @property
    def needs_path(self) -> bool:
        """Silence would fail it: the destination must answer (a deny, a closed port or
        "no answer" expectation is satisfied by silence, so it proves nothing about a path)."""
        return not self.case.expected.satisfied_by(TIMEOUT)

    @property
    def failed(self) -> bool:
        return not self.case.passed


@dataclass(frozen=True)
class Finding:
    """One explanation: the component and place it names, and the failures it covers."""

    component: str
    """path, port, service, node, nodeport, pod, dns, loadbalancer, loss, unexplained."""
    place: str
    """`east<->west`, `west/west-node-1`, `west/kube-system/kube-dns-lb`..."""
    summary: str
    covered: tuple[Seen, ...] = field(repr=False)

    @property
    def checks(self) -> dict[str, int]:
        """check id -> failed cases of it this finding covers."""
        counts: dict[str, int] = {}
        for seen in self.covered:
            counts[seen.check] = counts.get(seen.check, 0) + 1
        return counts

    def line(self) -> str:
        spread = ", ".join(f"{k} {v}" for k, v in sorted(self.checks.items()))
        return f"{self.summary} [{len(self.covered)} failed case(s): {spread}]"


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]

    @property
    def explained(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.component != "unexplained")

    def covering(self, cases: Iterable[Case]) -> list[Finding]:
        """The explained findings that cover any of `cases` (by identity), in order."""
        wanted = {id(c) for c in cases}
        return [f for f in self.explained if any(id(s.case) in wanted for s in f.covered)]

    def lines(self) -> list[str]:
        if not self.findings:
            return ["no failure to explain"]
        return [f"{n}. {f.line()}" for n, f in enumerate(self.findings, 1)]


Scope = Callable[[Seen], str | None]
"""A candidate's key of a case (None: outside every candidate of that kind)."""
Words = Callable[[str, Sequence[Seen]], str]
"""What a candidate says: its key and the failures it covers."""


def _every_one_failed(cases: Sequence[Seen]) -> bool:
    """Nothing in its scope got through: a single pass contradicts it."""
    return all(s.failed for s in cases)


@dataclass(frozen=True)
class Candidate:
    """One kind of explanation: which cases are in its scope (per key), when the key
    explains them (`holds` over the key's path-needing cases), and what it covers."""

    component: str
    scope: Scope
    words: Words
    holds: Callable[[Sequence[Seen]], bool] = _every_one_failed
    covers: Callable[[Seen], bool] = lambda _s: True


def diagnose(checks: Mapping[str, Iterable[Case]], topology: Topology) -> Diagnosis:
    """Every check's cases (passes included) -> the findings, most general first."""
    seen = [Seen(check, case) for check, cases in checks.items() for case in cases]
    seen = [s for s in seen if s.case.observed.verdict != Verdict.NOT_SUPPORTED]
    left = {id(s) for s in seen if s.failed}
    findings: list[Finding] = []
    for candidate in _candidates(topology, seen):
        for finding in _explain(candidate, seen, left):
            findings.append(finding)
            left -= {id(s) for s in finding.covered}
    findings = _merge_places(_merge_directions(findings))
    findings += _unexplained([s for s in seen if id(s) in left])
    return Diagnosis(_alone(tuple(findings)))


def _explain(candidate: Candidate, seen: Sequence[Seen], left: set[int]) -> list[Finding]:
    """The keys of one candidate that hold and cover failures no earlier finding covered."""
    by_key: dict[str, list[Seen]] = {}
    for s in seen:
        key = candidate.scope(s)
        if key is not None and s.needs_path:
            by_key.setdefault(key, []).append(s)
    found = []
    for key, cases in by_key.items():
        if not candidate.holds(cases):
            continue
        covered = tuple(s for s in cases if s.failed and id(s) in left and candidate.covers(s))
        if covered:
            found.append(Finding(candidate.component, key, candidate.words(key, covered), covered))
    return sorted(found, key=lambda f: -len(f.covered))


def _always(_cases: Sequence[Seen]) -> bool:
    """Its evidence is elsewhere (the policy oracle's own verdicts), not in its scope."""
    return True


ENDPOINTS_FACT = "endpoints"
"""The protocol of a fact case a check adds for a Service it read with no ready endpoint
(suites/services/test_user_services.py): the API's word, beside what the probes saw."""


def _without_endpoints(cases: Sequence[Seen]) -> bool:
    """Every case to the Service failed, and either every source was refused (it exists and
    answers with a reset: no endpoint), or the API said it has no ready endpoint (a cloud
    load balancer with no healthy target drops, where kube-proxy refuses)."""
    if not all(s.failed for s in cases):
        return False
    said = any(s.case.protocol == ENDPOINTS_FACT for s in cases)
    return said or all(s.case.observed.verdict == Verdict.REFUSED for s in cases)


def _to_several(cases: Sequence[Seen]) -> bool:
    """A node's pods fail to several destinations (one destination is that destination's
    story, not the node's)."""
    names = {s.case.destination.name.split(".")[0] for s in cases}
    return _every_one_failed(cases) and len(names) > 1


def _from_several(cases: Sequence[Seen]) -> bool:
    """A node's pods fail from several source nodes (one source is that source's story)."""
    sources = {(s.case.source.cluster, s.case.source.node) for s in cases}
    return _every_one_failed(cases) and len(sources) > 1


def _lossy(cases: Sequence[Seen]) -> bool:
    """Pings lost (some answered) where other probes get through: a lossy link, whose lost
    packets also time out the odd connect on the same path."""
    return any(_lost(s) for s in cases) and any(not s.failed for s in cases)


def _lost(s: Seen) -> bool:
    return s.case.observed.verdict == Verdict.LOSS


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


def _candidates(topology: Topology, seen: Sequence[Seen]) -> list[Candidate]:
    peered = _peered(topology)
    own_dns = _own_dns(topology)
    down = _down_directions(seen, peered)
    place = _namespace_of(topology)
    egress = _policy_denials(seen, "egress")
    ingress = _policy_denials(seen, "ingress")

    def denied_from(s: Seen) -> str | None:
        src = place(s.case.source)
        return f"{src}: {egress[src]}" if s.case.source.kind == "pod" and src in egress else None

    def denied_to(s: Seen) -> str | None:
        """Pods there, and the Services in front of them (a Service's `namespace/name`)."""
        dst = s.case.destination
        if dst.kind == "ingress":
            where = _backend_namespace(s.case)
        elif dst.kind == "service-name":
            where = _name_namespace(dst)
        elif dst.kind in ("pod", "service", "nodeport", "loadbalancer"):
            where = place(dst)
        else:
            return None
        return f"{where}: {ingress[where]}" if where in ingress else None

    def world(s: Seen) -> str | None:
        """Public addresses, said with the path only where the path is down too."""
        key = _direction(s) if _world(s, peered) else None
        return key if key in down else None

    return [
        Candidate("policy", denied_from, _egress_words, holds=_always),
        Candidate("policy", denied_to, _policy_ingress_words, holds=_always),
        Candidate("path", lambda s: _direction(s) if peered(s) else None, _path_words),
        Candidate("path", world, _world_words),
        Candidate("service", _service, _service_words, holds=_without_endpoints),
        Candidate("port", lambda s: _port(s) if peered(s) else None, _port_words),
        Candidate(
            "loss", lambda s: _direction(s) if peered(s) else None, _loss_words, holds=_lossy
        ),
        Candidate("node", _destination_node, _node_words, holds=_from_several),
        Candidate("node", _source_node, _source_node_words, holds=_to_several),
        Candidate("nodeport", _nodeport_node, _nodeport_words),
        Candidate("pod", _destination_pod, _pod_words),
        Candidate("dns", lambda s: _dns_from(s) if own_dns(s) else None, _dns_from_words),
        Candidate("dns", _dns_of_zone, _dns_zone_words(own_dns)),
        Candidate("loadbalancer", _load_balancer, _lb_words),
        Candidate("ingress", _ingress_address, _ingress_words),
    ]


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


# --- words: what each candidate says ------------------------------------------------------


def _kinds(cases: Sequence[Seen]) -> str:
    return ", ".join(sorted({s.case.protocol for s in cases}))


def _egress_words(key: str, covered: Sequence[Seen]) -> str:
    where, _, names = key.partition(": ")
    return (
        f"NetworkPolicy {names} denies all egress of the pods in {where}: the network-policy "
        f"oracle expects every probe from them dropped, so other checks' probes from there "
        "fail by that policy, not the network"
    )


def _policy_ingress_words(key: str, covered: Sequence[Seen]) -> str:
    where, _, names = key.partition(": ")
    return (
        f"NetworkPolicy {names} denies all ingress of the pods in {where}: the network-policy "
        "oracle expects every probe to them dropped, so other checks' probes to those pods and "
        "their Services fail by that policy, not the network"
    )


def _path_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"{key} path down: every probe kind fails across it ({_kinds(covered)}): the peering, "
        "routes or firewall between the regions drop it"
    )


def _world_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"{key}: the destination's public addresses fail from there too ({_kinds(covered)}; "
        "a VPC sends them through its own gateway, so they fail only where that path is "
        "broken too)"
    )


def _sources(covered: Sequence[Seen]) -> int:
    return len({s.case.source for s in covered})


def _service_words(key: str, covered: Sequence[Seen]) -> str:
    said = [s for s in covered if s.case.protocol == ENDPOINTS_FACT]
    probed = [s for s in covered if s.case.protocol != ENDPOINTS_FACT]
    why = f" ({said[0].case.detail})" if said else " (its selector matches no ready pod)"
    how = "fails" if said else "refuses"
    return f"Service {key} has no ready endpoint: it {how} all {_sources(probed)} source(s){why}"


def _port_words(key: str, covered: Sequence[Seen]) -> str:
    direction, _, port = key.partition(" ")
    return (
        f"{direction} {port} blocked: every probe to that port fails while other ports between "
        "these regions connect (a security group / firewall rule for it is missing, or a deny "
        "rule wins)"
    )


def _loss_words(key: str, covered: Sequence[Seen]) -> str:
    pings = [s.case.ping for s in covered if _lost(s) and s.case.ping is not None]
    sent = sum(p.transmitted for p in pings)
    lost = sent - sum(p.received for p in pings)
    rate = f"{lost} of {sent} pings lost ({100 * lost / sent:.0f}%)" if sent else "pings lost"
    others = len(covered) - len(pings)
    more = f", and {others} other probe(s) timed out on the same path" if others else ""
    return f"packet loss {key}: {rate} in the failing pod pairs{more} (a lossy link or queue)"


def _node_words(key: str, covered: Sequence[Seen]) -> str:
    return f"node {key} unreachable: every probe to its pods fails, other nodes' pods answer"


def _source_node_words(key: str, covered: Sequence[Seen]) -> str:
    return f"node {key} reaches nothing: every probe from its pods fails, other nodes' succeed"


def _nodeport_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"NodePorts of node {key} closed: no NodePort answers there while other nodes' do "
        "(kube-proxy's rules on that node)"
    )


def _pod_words(key: str, covered: Sequence[Seen]) -> str:
    return f"pod {key} unreachable: every probe to it fails, other pods answer (its route)"


def _dns_from_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"{key}'s cluster DNS answers nothing: every lookup from its pods through it fails, "
        "its own zone's included (its DNS pods or their Service)"
    )


def _dns_zone_words(own_dns: Callable[[Seen], bool]) -> Words:
    def words(key: str, covered: Sequence[Seen]) -> str:
        direct = sorted({dns_server(s.case) for s in covered if not own_dns(s)})
        lb = (
            f"; lookups asked straight at {', '.join(direct)} fail too: {key}'s DNS load "
            "balancer does not answer"
            if direct
            else f": {key}'s DNS load balancer, or the stub domains forwarding to it"
        )
        return f"{key}'s names cannot be resolved from other clusters{lb}"

    return words


def _lb_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"LoadBalancer {key} does not answer: all {_sources(covered)} source(s) fail "
        "(the load balancer, or its health checks of the nodes)"
    )


def _ingress_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"the ingress controller of {key} does not answer: every request to it fails from all "
        f"{_sources(covered)} source(s) (its pods, or its LoadBalancer)"
    )


def _unexplained(left: Sequence[Seen]) -> list[Finding]:
    by_check: dict[str, list[Seen]] = {}
    for s in left:
        by_check.setdefault(s.check, []).append(s)
    return [
        Finding("unexplained", check, f"{check}: no shared cause (see its own failures)", tuple(c))
        for check, c in sorted(by_check.items())
    ]


def _merge_directions(findings: list[Finding]) -> list[Finding]:
    """`east->west` and `west->east` of the same kind said once, as `east<->west`."""
    merged: list[Finding] = []
    for finding in findings:
        src, arrow, rest = finding.place.partition("->")
        dst, _, tail = rest.partition(" ")
        twin = f"{dst}->{src}" + (f" {tail}" if tail else "")
        pair = next((f for f in merged if arrow and f.component == finding.component
                     and f.place == twin), None)  # fmt: skip
        if pair is None:
            merged.append(finding)
            continue
        both = f"{min(src, dst)}<->{max(src, dst)}" + (f" {tail}" if tail else "")
        summary = pair.summary.replace(pair.place, both, 1)
        merged[merged.index(pair)] = Finding(
            finding.component, both, summary, pair.covered + finding.covered
        )
    return merged


def _merge_places(findings: list[Finding]) -> list[Finding]:
    """Two findings of one component at one place (a cluster's DNS seen from inside and from
    the other clusters) said as one: both halves hold, so its DNS itself is down."""
    merged: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        key = (finding.component, finding.place)
        if key not in merged:
            merged[key] = finding
            continue
        first = merged[key]
        if finding.component == "policy":
            where, _, names = first.place.partition(": ")
            summary = (
                f"NetworkPolicy {names} denies all ingress and egress of the pods in {where}: "
                "the network-policy oracle expects every probe to and from them dropped, so "
                "other checks' probes to and from there fail by that policy, not the network"
            )
        elif finding.component == "path":
            summary = f"{first.summary}; {finding.summary.split(': ', 1)[-1]}"
        elif finding.component == "dns":
            summary = (
                f"{finding.place}'s DNS down: every lookup through it fails, from its own pods "
                "and from other clusters (its DNS pods)"
            )
        else:
            summary = f"{first.summary}; {finding.summary}"
        merged[key] = Finding(first.component, first.place, summary,
                              first.covered + finding.covered)  # fmt: skip
    return list(merged.values())


def _alone(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """A single finding that explains every failure says so."""
    if len(findings) != 1:
        return findings
    only = findings[0]
    return (Finding(only.component, only.place, f"{only.summary}; nothing else fails",
                    only.covered),)  # fmt: skip
