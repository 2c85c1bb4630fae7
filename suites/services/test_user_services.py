"""The user's own Services: every Service of the region namespaces that netconform did not
deploy is judged too. From every probe pod of its cluster, its ClusterIP connects on each TCP
port; from every probe pod of every cluster, each LoadBalancer's address connects; a
LoadBalancer without an address fails naming it, and a Service whose selector matches no
ready pod is named as such (it refuses every source: the diagnosis says so first).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from fixtures.checks import Verify
from fixtures.plugin import MANAGED_BY, RegionName
from netconform.check import Check, Environment, Requirement
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
from netconform.probes import Probe
from netconform.result import Result, destination_cluster
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


def _ready(client: Any, namespace: str, name: str) -> int:
    found = [e for e in client.objects("Endpoints", namespace) if e.metadata.name == name]
    subsets = (found[0].subsets or []) if found else []
    return sum(len(s.addresses or []) for s in subsets)


def _of(cluster: str, client: Any, svc: Any) -> UserService | None:
    spec, meta = svc.spec, svc.metadata
    ports = tuple(int(p.port) for p in spec.ports or [] if (p.protocol or "TCP") == "TCP")
    if spec.type not in ("ClusterIP", "NodePort", "LoadBalancer") or not ports:
        return None
    if not spec.cluster_ip or spec.cluster_ip == "None":
        return None  # headless: no address of its own to judge
    ingress = (svc.status.load_balancer.ingress or []) if svc.status.load_balancer else []
    address = (ingress[0].ip or ingress[0].hostname or "") if ingress else ""
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.selector or {}).items()))
    ready = _ready(client, meta.namespace, meta.name)
    return UserService(cluster, meta.namespace, meta.name, spec.type, spec.cluster_ip, ports,
                       address, ready, selector)  # fmt: skip


def user_services(env: Environment) -> list[UserService]:
    """The region namespaces' Services without netconform's label (once per environment)."""

    def read() -> list[UserService]:
        found = []
        for cluster, client in env.clusters.items():
            namespace = env.topology.cluster(cluster).namespace
            for svc in client.objects("Service", namespace):
                if (svc.metadata.labels or {}).get(MANAGED_BY) == "netconform":
                    continue
                seen = _of(cluster, client, svc)
                if seen is not None:
                    found.append(seen)
        return found

    return env.remember("user-services", read)


def scenario(env: Environment) -> Scenario:
    services = user_services(env)
    by_endpoint: dict[Endpoint, UserService] = {}
    for s in services:
        by_endpoint[service_ip(s.cluster, s.namespace, s.name, s.cluster_ip)] = s
        if s.kind == "LoadBalancer" and s.address:
            by_endpoint[lb_endpoint(s.cluster, f"{s.namespace}/{s.name}", s.address)] = s

    def include(src: Endpoint, dst: Endpoint) -> bool:
        return dst.kind == "loadbalancer" or src.cluster == dst.cluster

    def probes_of(dst: Endpoint) -> list[Probe]:
        return [Probe("tcp", port) for port in by_endpoint[dst].ports]

    unaddressed = tuple(_no_address(s) for s in services if s.kind == "LoadBalancer"
                        and not s.address)  # fmt: skip
    empty = tuple(_no_endpoint(s) for s in services if s.ready == 0)
    owners = {s.cluster for s in services}
    nothing = tuple(_none_in(c, env.topology.cluster(c).namespace) for c in env.clusters
                    if c not in owners)  # fmt: skip
    return env.scenario(
        env.sources(), list(by_endpoint), [], include=include, probes_of=probes_of,
        explain=lambda cases: cause(cases, services), skipped=(*unaddressed, *empty, *nothing),
    )  # fmt: skip


def _no_address(s: UserService) -> Case:
    where = lb_endpoint(s.cluster, f"{s.namespace}/{s.name}", "-")
    return Case(RUNNER, where, "address", 0, Addressed(Verdict.ALLOW), Addressed(Verdict.TIMEOUT),
                "status.loadBalancer has no ingress address")  # fmt: skip


def _no_endpoint(s: UserService) -> Case:
    """The API's word for a Service with no ready endpoint: a failed case of its own (the
    diagnosis reads it, `ENDPOINTS_FACT`), beside what the probes to it saw."""
    where = service_ip(s.cluster, s.namespace, s.name, s.cluster_ip)
    why = f"its selector {s.selector or '(none)'} matches no ready pod"
    return Case(RUNNER, where, ENDPOINTS_FACT, 0, Ready(Verdict.ALLOW), Ready(Verdict.TIMEOUT), why)


def _none_in(cluster: str, namespace: str) -> Case:
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


def cause(cases: Any, services: list[UserService]) -> str:
    """The Services whose selector matches no ready pod, then those without an address."""
    failed = {c.destination.name for c in cases if not c.passed}
    empty = [s for s in services if s.ready == 0 and f"{s.namespace}/{s.name}" in failed]
    parts = [
        f"Service {s.label} has no ready endpoint: its selector {s.selector or '(none)'} "
        "matches no ready pod"
        for s in empty
    ]
    parts += [
        f"LoadBalancer {s.label} has no address (its load balancer controller has not "
        "provisioned it)"
        for s in services
        if s.kind == "LoadBalancer" and not s.address and f"{s.namespace}/{s.name}" in failed
    ]
    return "; ".join(parts)


CHECK = Check(
    "user-services",
    __doc__ or "",
    scenario,
    lambda _s, _d, _p: ALLOW,
    slice_by=destination_cluster,
    param="region",
    refine=with_unaddressed,
    requires=(
        Requirement(
            "no Service of the region namespaces that this run did not deploy", user_services
        ),
    ),
    converges=True,
)


def test_user_services(region: RegionName, verify: Verify) -> None:
    verify(CHECK, region)
