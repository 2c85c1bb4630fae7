"""Reachability between pods: how two pods relate, loss and RTT per region pair, and the
likely cause read from the shape of every failure in a matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from netconform.outcomes import Case, Endpoint
from netconform.stats import wilson


def relation(src: Endpoint, dst: Endpoint) -> str:
    if src.cluster != dst.cluster:
        return "other-region"
    return "same-node" if src.node == dst.node else "other-node"


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
    starved: int = 0
    """Pod pairs whose RTTs starvation could have changed (measured while their node was
    starved of CPU, with a spread above the floor: `netconform.probes.batch.mark_starved`)."""
    starved_spread: float = 0.0
    """The widest RTT spread (max - min, ms) among those pod pairs: how much it may add."""
    measured: int = 0
    """Pod pairs with RTTs at all."""

    @property
    def loss_percent(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 100.0


def summarize(cases: Sequence[Case], source: str, destination: str) -> PairSummary:
    pings = [c for c in cases if (c.source.cluster, c.destination.cluster) == (source, destination)]
    stats = [c.ping for c in pings if c.ping is not None]
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
        failed_cases=sum(1 for c in pings if not c.passed),
        starved=sum(1 for s in rtts if s.starved),
        starved_spread=max(
            ((s.rtt_max or 0.0) - (s.rtt_min or 0.0) for s in rtts if s.starved), default=0.0
        ),
        measured=len(rtts),
    )


def likely_cause(cases: Sequence[Case]) -> str:
    """A hint from the shape of every failure in the matrix: one pod, cross-region, or more."""
    failed = [c for c in cases if not c.passed]
    if not failed:
        return ""
    pods = {c.source for c in failed} | {c.destination for c in failed}
    if len(pods) > 2:
        for pod in sorted(pods, key=lambda p: p.label):
            # its route is the story only if none of its own cases got through
            through = any(c.passed and pod in (c.source, c.destination) for c in cases)
            if all(pod in (c.source, c.destination) for c in failed) and not through:
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


def icmp_only_cause(cases: Sequence[Case]) -> str:
    """When every failure is a ping with no reply between pods that TCP connects: say so."""
    failed = [c for c in cases if not c.passed]
    connected = {(c.source, c.destination) for c in cases if c.protocol == "tcp" and c.passed}
    silent = [c for c in failed if c.protocol == "icmp" and c.observed.verdict != "LOSS"]
    if not failed or len(silent) != len(failed):
        return ""
    if not all((c.source, c.destination) in connected for c in silent):
        return ""
    pairs = ", ".join(sorted({"<->".join(sorted((c.source.cluster, c.destination.cluster)))
                              for c in silent}))  # fmt: skip
    return (
        f"TCP connects but ICMP is dropped ({pairs}): a firewall / security group rule "
        "drops ICMP between these pods; the path itself works"
    )


LOSS_RTT_HEADER = (
    "source",
    "destination",
    "sent",
    "received",
    "loss %",
    "loss 99% bound %",
    "rtt min ms",
    "rtt avg ms",
    "rtt max ms",
    "failed cases",
    "rtt measured",
)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _measured(summary: PairSummary) -> str:
    """`ok`, or `starved (k of n, up to +X ms)`: RTTs taken while the pinging node was starved
    of CPU, whose spread says the delay reached them, are not the network's alone."""
    if not summary.starved:
        return "ok" if summary.measured else "-"
    return (
        f"starved ({summary.starved} of {summary.measured} pod pairs, "
        f"up to +{summary.starved_spread:.1f} ms)"
    )


def loss_rtt_rows(
    cases: Sequence[Case], regions: Sequence[str]
) -> tuple[tuple[tuple[object, ...], ...], tuple[bool, ...]]:
    """The loss/RTT matrix per ordered region pair, and which rows have failures."""
    summaries = [summarize(cases, a, b) for a in regions for b in regions]
    rows = tuple(
        (
            s.source,
            s.destination,
            s.sent,
            s.received,
            f"{s.loss_percent:.1f}",
            "{:.1f}-{:.1f}".format(*(100 * b for b in wilson(s.sent - s.received, s.sent))),
            _fmt(s.rtt_min),
            _fmt(s.rtt_avg),
            _fmt(s.rtt_max),
            s.failed_cases,
            _measured(s),
        )
        for s in summaries
    )
    return rows, tuple(s.failed_cases > 0 for s in summaries)


def node_cause(cases: Sequence[Case]) -> str:
    """A hint for Service checks: the path between regions, one node's rules, one Service, or
    more; each said only where the passing cases do not contradict it."""
    failed = [c for c in cases if not c.passed]
    if not failed:
        return ""
    regions = {(c.source.cluster, c.destination.cluster) for c in failed}
    if all(a != b for a, b in regions) and any(c.passed for c in cases):
        pairs = ", ".join(sorted({"->".join(p) for p in regions}))
        return (
            f"only cross-region cases fail ({pairs}), the same Services answer inside each "
            "region: the path between the regions (peering, routes, firewall), not kube-proxy"
        )
    spread = spread_cause(cases, failed)
    if spread:
        return spread
    nodes = {(c.source.cluster, c.source.node) for c in failed}
    if len(nodes) == 1:
        cluster, node = next(iter(nodes))
        return (
            f"every failed case starts on node {cluster}/{node}: kube-proxy's rules on that "
            "node (or its routing)"
        )
    targets = {c.destination.label for c in failed}
    if len(targets) == 1 and failed[0].destination.kind == "nodeport":
        dst = failed[0].destination
        elsewhere = any(c.passed and c.destination.kind == "nodeport"
                        and c.destination.name == dst.name for c in cases)  # fmt: skip
        if elsewhere:
            return (
                f"every failed case goes to {dst.label}, while {dst.name}'s NodePort answers "
                f"on other nodes: kube-proxy's NodePort rules on node {dst.cluster}/{dst.node}"
            )
    if len(targets) == 1:
        target = next(iter(targets))
        reached = sorted({c.source.cluster for c in cases if c.passed
                          and c.destination.label == target})  # fmt: skip
        if reached:
            return (
                f"every failed case goes to {target}, which answers from {', '.join(reached)}: "
                "the path from the failing sources to it"
            )
        return f"every failed case goes to {target}: its endpoints or their pods"
    return "failures from several nodes to several Services: kube-proxy or the pod network"


def spread_cause(cases: Sequence[Case], failed: Sequence[Case]) -> str:
    """When every failure is a Service that answered, but not from each of its ready pods
    (`spread`): the pods that never answered, from which nodes; not the Service's rules as a
    whole, which the answers from its other pods show working."""
    from netconform.probes.spread import Backends  # the probe kinds import this module's kin

    spread = [c for c in failed if isinstance(c.observed, Backends) and c.observed.pods]
    if not spread or len(spread) != len(failed):
        return ""
    missing = sorted({n for c in spread if isinstance(c.expected, Backends)
                      for n in c.expected.names if n not in c.observed.pods})  # type: ignore[attr-defined]  # fmt: skip
    services = sorted({c.destination.label for c in spread})
    nodes = sorted({f"{c.source.cluster}/{c.source.node}" for c in spread})
    fine = sorted({f"{c.source.cluster}/{c.source.node}" for c in cases if c.passed
                   and c.destination.label in services} - set(nodes))  # fmt: skip
    pods = ", ".join(missing) or "some of its pods"
    if fine:
        return (
            f"{', '.join(services)} answers from node(s) {', '.join(nodes)}, but never from "
            f"{pods}, which answer through it from {', '.join(fine)}: the path from those "
            "nodes to those pods (kube-proxy's endpoint rules there, or the pods' routes)"
        )
    return (
        f"{', '.join(services)} answers, but never from {pods}, from any node: those pods "
        "(not serving the Service's port, or their node's routes), not the Service's rules"
    )
