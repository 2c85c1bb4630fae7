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

from collections.abc import Iterable, Mapping, Sequence

from netconform.diagnosis.model import (
    ENDPOINTS_FACT,
    Candidate,
    Diagnosis,
    Finding,
    Seen,
    _always,
    _from_several,
    _lossy,
    _to_several,
    _without_endpoints,
)
from netconform.diagnosis.scopes import (
    _backend_namespace,
    _destination_node,
    _destination_pod,
    _direction,
    _dns_from,
    _dns_of_zone,
    _down_directions,
    _ingress_address,
    _load_balancer,
    _name_namespace,
    _namespace_of,
    _nodeport_node,
    _own_dns,
    _peered,
    _policy_denials,
    _port,
    _service,
    _source_node,
    _world,
    dns_server,
    down_directions,
)
from netconform.diagnosis.words import (
    _dns_from_words,
    _dns_zone_words,
    _ingress_words,
    _lb_words,
    _loss_words,
    _node_words,
    _nodeport_words,
    _path_words,
    _pod_words,
    _port_words,
    _service_words,
    _source_node_words,
    _world_words,
    policy_words,
)
from netconform.outcomes import Case, Verdict
from netconform.topology import Topology

__all__ = [
    "ENDPOINTS_FACT",
    "Diagnosis",
    "Finding",
    "Seen",
    "diagnose",
    "dns_server",
    "down_directions",
]


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
        Candidate("policy", denied_from, policy_words("egress"), holds=_always),
        Candidate("policy", denied_to, policy_words("ingress"), holds=_always),
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
            summary = policy_words("ingress and egress")(first.place, ())
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
