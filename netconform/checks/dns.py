"""The dns suites' expectations, zones, tables and likely causes (`suites/dns`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from netconform.check import Table
from netconform.dnsglue import LB_NAME, SYSTEM
from netconform.dnsreport import LATENCY_HEADER, latency_rows
from netconform.outcomes import Case, Outcome, Verdict
from netconform.result import Result
from netconform.topology import Cluster, Topology

UNRELATED = "netconform-open-resolver-test.example.com"
SILENT = (Verdict.TIMEOUT, Verdict.UNREACHABLE, Verdict.REFUSED)


def zone_of(cluster: Cluster) -> str:
    return (cluster.dns_zone or f"{cluster.namespace}.svc.cluster.local").rstrip(".")


@dataclass(frozen=True)
class NoAnswer(Outcome):
    """Expected from the world for an internal LB: nothing comes back at all."""

    def satisfied_by(self, observed: Outcome) -> bool:
        return observed.verdict in SILENT

    def __str__(self) -> str:
        return "NO ANSWER (internal LB, world)"


@dataclass(frozen=True)
class NotRecursive(Outcome):
    """An unrelated name: refused (or failed), never resolved by recursion."""

    def satisfied_by(self, observed: Outcome) -> bool:
        return observed.verdict in (Verdict.REFUSED, Verdict.SERVFAIL)

    def __str__(self) -> str:
        return "REFUSED (no recursion)"


def lb_cause(cases: Sequence[Case]) -> str:
    """Per failing DNS LoadBalancer, what its cases show: it answers the world although
    internal, it recurses for an unrelated name, some clusters reach it and others not, or
    none does (then the LB itself)."""
    hints = []
    for cluster in sorted({c.destination.cluster for c in cases if not c.passed}):
        mine = [c for c in cases if c.destination.cluster == cluster]
        hints.append(_lb_hint(cluster, mine))
    return "; ".join(hints)


def _lb_hint(cluster: str, mine: list[Case]) -> str:
    failed = [c for c in mine if not c.passed]
    lb = f"the DNS LoadBalancer of {cluster} ({SYSTEM}/{LB_NAME})"
    exposed = [c for c in failed if isinstance(c.expected, NoAnswer)]
    recursed = [c for c in failed if isinstance(c.expected, NotRecursive)
                and c.observed.verdict == Verdict.ALLOW]  # fmt: skip
    silent = [c for c in failed if c.observed.verdict in SILENT and c not in exposed]
    said = []
    if exposed:
        said.append(
            f"{lb} answers the world (the runner): its internal annotations are not in effect"
        )
    if recursed:
        said.append(
            f"{lb} resolves the unrelated name {UNRELATED}: it recurses for any client "
            "(an open resolver), it does not just serve its zone"
        )
    if silent:
        askers = sorted({c.source.cluster or c.source.label for c in silent})
        # answered at all (a wrong record or a refusal is an answer): the LB is reached
        answering = sorted({c.source.cluster or c.source.label for c in mine
                            if c.observed.verdict not in SILENT} - set(askers))  # fmt: skip
        if answering:
            said.append(
                f"{lb} answers {', '.join(answering)} and not {', '.join(askers)}: "
                "the path from the failing clusters to it (peering, routes, firewall)"
            )
        elif not exposed and not recursed:
            said.append(
                f"{lb}: check its address (status.loadBalancer.ingress), its endpoints (the "
                "coredns pods) and its annotations"
            )
    if not said:
        said.append(f"{lb} answers, but not as the API says ({failed[0].observed})")
    return "; ".join(said)


def latency(result: Result, topology: Topology) -> list[Table]:
    rows, bad = latency_rows(result.cases, ["", *(str(n) for n in topology.names)])
    return [Table(f"dns latency through {LB_NAME} (dig)", LATENCY_HEADER, rows, bad)]
