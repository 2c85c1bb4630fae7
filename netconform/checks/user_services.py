"""The user-services suite's facts, unprobed cases and likely cause
(`suites/services/test_user_services.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from netconform.diagnosis import ENDPOINTS_FACT
from netconform.outcomes import (
    ALLOW,
    NOT_SUPPORTED,
    RUNNER,
    Case,
    Endpoint,
    Outcome,
    Verdict,
    service_ip,
)
from netconform.outcomes import load_balancer as lb_endpoint
from netconform.result import Result
from netconform.scenario import Oracle, Scenario


@dataclass(frozen=True)
class Addressed(Outcome):
    """A LoadBalancer's address in its status (expected), or its absence (observed)."""

    def __str__(self) -> str:
        return "ADDRESS" if self.verdict == Verdict.ALLOW else "NO ADDRESS"


@dataclass(frozen=True)
class Ready(Outcome):
    """A Service's ready endpoints as the API lists them (expected some; observed none)."""

    def __str__(self) -> str:
        return "READY ENDPOINTS" if self.verdict == Verdict.ALLOW else "NO READY ENDPOINT"


@dataclass(frozen=True)
class UserService:
    """What the API says of one Service the run did not deploy."""

    cluster: str
    namespace: str
    name: str
    kind: str
    cluster_ip: str
    ports: tuple[int, ...]
    address: str
    ready: int
    selector: str

    @property
    def label(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.name}"

    @property
    def ref(self) -> str:
        """`namespace/name`, as its cases' destinations are named."""
        return f"{self.namespace}/{self.name}"


def no_address(s: UserService) -> Case:
    where = lb_endpoint(s.cluster, f"{s.namespace}/{s.name}", "-")
    return Case(RUNNER, where, "address", 0, Addressed(Verdict.ALLOW), Addressed(Verdict.TIMEOUT),
                "status.loadBalancer has no ingress address")  # fmt: skip


def no_endpoint(s: UserService) -> Case:
    """The API's word for a Service with no ready endpoint: a failed case of its own (the
    diagnosis reads it, `ENDPOINTS_FACT`), beside what the probes to it saw."""
    where = service_ip(s.cluster, s.namespace, s.name, s.cluster_ip)
    why = f"its selector {s.selector or '(none)'} matches no ready pod"
    return Case(RUNNER, where, ENDPOINTS_FACT, 0, Ready(Verdict.ALLOW), Ready(Verdict.TIMEOUT), why)


def none_in(cluster: str, namespace: str) -> Case:
    """A cluster without a Service of its own: its test is `not supported`, saying so."""
    where = Endpoint(cluster, namespace, "-", kind="service")
    why = f"{cluster} has no Service of its own in namespace {namespace}"
    return Case(RUNNER, where, "tcp", 0, ALLOW, NOT_SUPPORTED, why)


def with_unaddressed(_scenario: Scenario, _oracle: Oracle, result: Result) -> Result:
    """`refine`: a LoadBalancer without an address (which no probe can reach) and a Service
    the API lists no ready endpoint for are failed cases of their own (the scenario hands
    them over among its unprobed cases)."""
    facts = ("address", ENDPOINTS_FACT)
    missing = tuple(c for c in result.not_supported if c.protocol in facts)
    rest = tuple(c for c in result.not_supported if c.protocol not in facts)
    return replace(result, cases=(*result.cases, *missing), not_supported=rest)


def cause(cases: Sequence[Case], services: list[UserService]) -> str:
    """The Services whose selector matches no ready pod, then those without an address; a
    Service the API listed empty but that answered a probe since is not called empty."""
    failed = {c.destination.name for c in cases if not c.passed}
    answered = {c.destination.name for c in cases if c.passed and c.protocol != ENDPOINTS_FACT}
    empty = [s for s in services if s.ready == 0 and s.ref in failed and s.ref not in answered]
    parts = [
        f"Service {s.label} has no ready endpoint: its selector {s.selector or '(none)'} "
        "matches no ready pod"
        for s in empty
    ]
    parts += [
        f"LoadBalancer {s.label} has no address (its load balancer controller has not "
        "provisioned it)"
        for s in services
        if s.kind == "LoadBalancer" and not s.address and s.ref in failed
    ]
    return "; ".join(parts)
