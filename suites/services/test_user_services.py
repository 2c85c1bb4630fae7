"""The user's own Services: every Service of the region namespaces that netconform did not
deploy is judged too. From every probe pod of its cluster, its ClusterIP connects on each TCP
port; from every probe pod of every cluster, each LoadBalancer's address connects; a
LoadBalancer without an address fails naming it, and a Service whose selector matches no
ready pod is named as such (it refuses every source: the diagnosis says so first).
"""

from __future__ import annotations

from typing import Any

from fixtures.checks import Verify
from fixtures.plugin import MANAGED_BY, RegionName
from netconform.check import Check, Environment, Requirement
from netconform.checks.user_services import (
    UserService,
    cause,
    no_address,
    no_endpoint,
    none_in,
    with_unaddressed,
)
from netconform.outcomes import ALLOW, Endpoint, service_ip
from netconform.outcomes import load_balancer as lb_endpoint
from netconform.probes import Probe
from netconform.result import destination_cluster
from netconform.scenario import Scenario


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

    unaddressed = tuple(no_address(s) for s in services if s.kind == "LoadBalancer"
                        and not s.address)  # fmt: skip
    empty = tuple(no_endpoint(s) for s in services if s.ready == 0)
    owners = {s.cluster for s in services}
    nothing = tuple(none_in(c, env.topology.cluster(c).namespace) for c in env.clusters
                    if c not in owners)  # fmt: skip
    return env.scenario(
        env.sources(), list(by_endpoint), [], include=include, probes_of=probes_of,
        explain=lambda cases: cause(cases, services), skipped=(*unaddressed, *empty, *nothing),
    )  # fmt: skip


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
