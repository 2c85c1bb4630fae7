"""The services suite's probes, expectations and likely causes (`suites/services`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from netconform.echo import ECHO_PATH
from netconform.outcomes import ALLOW, REFUSED, Case, Endpoint, Outcome, Verdict
from netconform.probes import Probe
from netconform.probes.spread import Backends

REPLICAS = 2
HTTP = Probe("http", 80)
SPREAD_REQUESTS = 20
"""New connections per source through its ClusterIP: with two endpoints, a healthy Service
misses one with probability 2 * 2**-20 per source; a backend reachable from nowhere is
missed by none."""
SPREAD = Probe("spread", 80, params=(("path", ECHO_PATH), ("requests", str(SPREAD_REQUESTS))))
SILENT = (Verdict.TIMEOUT, Verdict.REFUSED, Verdict.UNREACHABLE)


@dataclass(frozen=True)
class Blocked(Outcome):
    """Expected: no answer of any kind (a timeout, a refusal, no route)."""

    def satisfied_by(self, observed: Outcome) -> bool:
        return observed.verdict in SILENT

    def __str__(self) -> str:
        return "BLOCKED"


BLOCKED = Blocked(Verdict.TIMEOUT)


@dataclass(frozen=True)
class Deployed:
    """What the suite's manifests became in every cluster."""

    services: dict[str, Endpoint]
    """cluster -> echo by ClusterIP."""
    backends: dict[str, tuple[str, ...]]
    """cluster -> the names of echo's ready pods (each must answer through the ClusterIP)."""
    empty: dict[str, Endpoint]
    node_ports: list[tuple[Endpoint, int]]
    lbs: list[Endpoint]
    ilbs: list[Endpoint]


def pod_oracle(_src: Endpoint, dst: Endpoint, _probe: Probe) -> Outcome:
    return REFUSED if dst.name.endswith("/echo-empty") else ALLOW


def runner_oracle(_src: Endpoint, dst: Endpoint, _probe: Probe) -> Outcome:
    return Backends(Verdict.ALLOW, want=REPLICAS) if dst.name.endswith("/echo-lb") else BLOCKED


def runner_cause(cases: Sequence[Case]) -> str:
    """The runner's view of each failing LoadBalancer (the runner is in no region: no story
    of regions or of a pod's route fits it): silent, answering from too few pods, or an
    internal one answering the world."""
    hints = []
    for lb in sorted({c.destination for c in cases if not c.passed}, key=lambda d: d.label):
        mine = [c for c in cases if c.destination == lb and not c.passed]
        seen, where = mine[0].observed, f"{lb.cluster}/{lb.name} at {lb.ip}"
        if isinstance(mine[0].expected, Blocked):
            hints.append(
                f"the internal LoadBalancer {where} answers the runner (the world, "
                f"{seen}): its internal-only annotations are not in effect"
            )
        elif seen.verdict in SILENT:
            hints.append(
                f"LoadBalancer {where} does not answer the runner ({seen.verdict}): its address "
                "(the cloud load balancer), its health checks, or the path from here to it"
            )
        elif isinstance(seen, Backends) and seen.pods:
            hints.append(
                f"LoadBalancer {where} answers the runner from {', '.join(seen.pods)} only: "
                "its other endpoints are not ready behind it (or not reached from its nodes)"
            )
        else:
            hints.append(f"LoadBalancer {where} answers the runner with {seen}, not from its pods")
    return "; ".join(hints)
