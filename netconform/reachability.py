"""Pod-to-pod reachability: sources x destinations x (icmp, tcp) -> batches -> cases.

Setup (which pods), traffic pattern (this module) and expectation (every pair ALLOW) are
kept apart, so the same expansion serves any expectation function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from netconform.outcomes import Case, Endpoint, Verdict
from netconform.probes import ProbeResult, ProbeSpec, run_batches
from netconform.topology import ProbeSettings
from netconform.vantage import Vantage

Expectation = Callable[[Endpoint, Endpoint, str, int], Verdict]


def always_allow(_src: Endpoint, _dst: Endpoint, _protocol: str, _port: int) -> Verdict:
    """The flat-network expectation of seed 000: every pod reaches every pod."""
    return Verdict.ALLOW


def relation(src: Endpoint, dst: Endpoint) -> str:
    if src.cluster != dst.cluster:
        return "other-region"
    return "same-node" if src.node == dst.node else "other-node"


def plan_probes(
    sources: Sequence[Endpoint], destinations: Sequence[Endpoint], port: int
) -> dict[Endpoint, list[tuple[ProbeSpec, Endpoint]]]:
    """For each source, a ping and a TCP connect to every other destination pod."""
    plan: dict[Endpoint, list[tuple[ProbeSpec, Endpoint]]] = {}
    for src in sources:
        probes = []
        for i, dst in enumerate(d for d in destinations if d != src):
            probes.append((ProbeSpec(f"d{i}-icmp", "ping", dst.ip), dst))
            probes.append((ProbeSpec(f"d{i}-tcp", "tcp", dst.ip, port), dst))
        plan[src] = probes
    return plan


@dataclass(frozen=True)
class Observation:
    """A case with the raw probe result behind it (for reports)."""

    case: Case
    result: ProbeResult


def measure(
    vantages: Mapping[Endpoint, Vantage],
    destinations: Sequence[Endpoint],
    settings: ProbeSettings,
    expect: Expectation = always_allow,
) -> list[Observation]:
    """Run one batch per source pod, all concurrently; a case per (pair, protocol)."""
    plan = plan_probes(list(vantages), destinations, settings.tcp_port)
    batches = [(vantages[src], [spec for spec, _ in probes]) for src, probes in plan.items()]
    results = run_batches(batches, settings)
    observations = []
    for src, probes in plan.items():
        by_id = results[vantages[src].name]
        for spec, dst in probes:
            result = by_id[spec.id]
            protocol = "icmp" if spec.kind == "ping" else "tcp"
            port = spec.port if protocol == "tcp" else 0
            case = Case(
                src,
                dst,
                protocol,
                port,
                expect(src, dst, protocol, port),
                result.verdict,
                f"{relation(src, dst)}, {result.detail}",
            )
            observations.append(Observation(case, result))
    return observations


@dataclass(frozen=True)
class PairSummary:
    """Loss and RTT over every ping between two regions."""

    source: str
    destination: str
    sent: int
    received: int
    rtt_min: float | None
    rtt_avg: float | None
    rtt_max: float | None
    failed_cases: int

    @property
    def loss_percent(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 100.0


def summarize(observations: Sequence[Observation], source: str, destination: str) -> PairSummary:
    pings = [
        o
        for o in observations
        if (o.case.source.cluster, o.case.destination.cluster) == (source, destination)
    ]
    stats = [o.result.ping for o in pings if o.result.ping is not None]
    rtts = [s for s in stats if s.rtt_avg is not None]
    weights = sum(s.received for s in rtts)
    return PairSummary(
        source=source,
        destination=destination,
        sent=sum(s.transmitted for s in stats),
        received=sum(s.received for s in stats),
        rtt_min=min((s.rtt_min for s in rtts if s.rtt_min is not None), default=None),
        rtt_avg=(sum((s.rtt_avg or 0.0) * s.received for s in rtts) / weights if weights else None),
        rtt_max=max((s.rtt_max for s in rtts if s.rtt_max is not None), default=None),
        failed_cases=sum(1 for o in pings if not o.case.passed),
    )


def likely_cause(cases: Sequence[Case]) -> str:
    """A hint from the shape of every failure in the matrix: one pod, cross-region, or more."""
    failed = [c for c in cases if not c.passed]
    if not failed:
        return ""
    pods = {c.source for c in failed} | {c.destination for c in failed}
    if len(pods) > 2:
        for pod in sorted(pods, key=lambda p: p.label):
            if all(pod in (c.source, c.destination) for c in failed):
                return (
                    f"every failed case involves {pod.label}: that pod's route on node "
                    f"{pod.node or '?'} (or the pod itself)"
                )
    regions = {(c.source.cluster, c.destination.cluster) for c in failed}
    if all(a != b for a, b in regions):
        pairs = ", ".join(sorted({"<->".join(sorted((a, b))) for a, b in regions}))
        return (
            f"only cross-region traffic fails ({pairs}): the peering, routes or "
            "firewall rules between the regions drop it"
        )
    return "failures inside a region too: the pod network (CNI) or node routing"
