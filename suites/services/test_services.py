"""Services (seed 002's Service checks, seed 003's internal load balancers): from a probe pod
in every region, the own cluster's echo by ClusterIP answering from every one of its ready
pods (SPREAD_REQUESTS new connections: an endpoint unreachable from a node fails that node's
cases naming the pod, whatever kube-proxy picks), every cluster's NodePort on every node, every
cluster's external and internal LoadBalancer, and a Service without endpoints refused;
from the runner (the lab's world, or this machine for real clusters), every external
LoadBalancer answers and spreads over its ready endpoints, and every internal one is NOT
reachable.

A cluster whose LoadBalancer gets no address within the `load_balancer` timeout fails naming
the Service, unless NO cluster has a LoadBalancer implementation at all: none of ours got an
address and no Service of type LoadBalancer anywhere holds one. Then the runner check is
`not supported` and the pod check leaves load balancers out.
"""

from __future__ import annotations

from pathlib import Path

from fixtures.checks import Verify
from fixtures.plugin import RegionName
from netconform.check import Check, Environment, Requirement, load_manifests
from netconform.checks.services import (
    HTTP,
    REPLICAS,
    SPREAD,
    Deployed,
    pod_oracle,
    runner_cause,
    runner_oracle,
)
from netconform.echo import ECHO_PATH
from netconform.outcomes import RUNNER, Endpoint, Outcome, Verdict, node_port
from netconform.probes import Probe
from netconform.probes.spread import Backends
from netconform.profiles import first_source_per_cluster
from netconform.reachability import node_cause
from netconform.result import destination_cluster, source_cluster
from netconform.scenario import Scenario

MANIFESTS = load_manifests(Path(__file__).with_name("services.yaml"))


def deploy(env: Environment) -> Deployed:
    """Apply the manifests everywhere, wait for endpoints and (bounded) for LB addresses;
    once per environment (the requirement and both checks share it, maybe at once)."""
    return env.remember("services-deployed", lambda: _deploy(env))


def _deploy(env: Environment) -> Deployed:
    env.apply_all(MANIFESTS)
    services = {c: env.service(c, "echo", ready=REPLICAS) for c in env.clusters}
    backends = {c: tuple(p.name for p in env.ready_pods(c, "echo")) for c in env.clusters}
    empty = {c: env.service(c, "echo-empty", ready=0) for c in env.clusters}
    node_ports = []
    for cluster, client in env.clusters.items():
        ns = env.topology.cluster(cluster).namespace
        svc = next(s for s in client.objects("Service", ns) if s.metadata.name == "echo-nodeport")
        for node in client.objects("Node", ""):
            ip = next(a.address for a in node.status.addresses if a.type == "InternalIP")
            name = f"{ns}/echo-nodeport"
            endpoint = node_port(cluster, name, node.metadata.name, ip)
            node_ports.append((endpoint, int(svc.spec.ports[0].node_port)))
    lbs = list(env.load_balancers("echo-lb").values())
    ilbs = list(env.load_balancers("echo-ilb").values())
    return Deployed(services, backends, empty, node_ports, lbs, ilbs)


def has_load_balancers(env: Environment) -> bool:
    return bool(deploy(env).lbs)


def from_pods(env: Environment) -> Scenario:
    """Every probe pod to its own ClusterIP and empty Service, every NodePort, every LB."""
    done = deploy(env)
    ports = {ep: port for ep, port in done.node_ports}
    destinations = [*done.services.values(), *done.empty.values(), *ports, *done.lbs, *done.ilbs]

    def include(src: Endpoint, dst: Endpoint) -> bool:
        return dst.kind != "service" or src.cluster == dst.cluster

    def probes_of(dst: Endpoint) -> list[Probe]:
        if dst in ports:
            return [Probe("http", ports[dst])]
        if dst.kind == "service":
            return [Probe("tcp", 80)] if dst.name.endswith("/echo-empty") else [SPREAD]
        return [HTTP]

    def expect(src: Endpoint, dst: Endpoint, probe: Probe) -> Outcome:
        if probe.kind == "spread":
            return Backends(Verdict.ALLOW, want=REPLICAS, names=done.backends[dst.cluster])
        return pod_oracle(src, dst, probe)

    return env.scenario(
        env.sources(), destinations, [HTTP], include=include, probes_of=probes_of, expect=expect
    )


def from_runner(env: Environment) -> Scenario:
    """The runner to every external LB (spread) and every internal one (blocked)."""
    done = deploy(env)
    spread = Probe("spread", 80, params=(("path", ECHO_PATH),))  # agnhost names its pod there
    return env.scenario(
        [RUNNER],
        [*done.lbs, *done.ilbs],
        [spread],
        probes_of=lambda dst: [spread if dst.name.endswith("/echo-lb") else HTTP],
    )


PODS = Check(
    "services",
    __doc__ or "",
    from_pods,
    pod_oracle,
    slice_by=source_cluster,
    param="region",
    cause=node_cause,
    converges=True,
    smoke=first_source_per_cluster,
)
RUNNER_CHECK = Check(
    "services-runner",
    __doc__ or "",
    from_runner,
    runner_oracle,
    slice_by=destination_cluster,
    param="region",
    requires=(Requirement("no LoadBalancer implementation in any cluster", has_load_balancers),),
    cause=runner_cause,
    converges=True,
)


def test_services_from_pods(region: RegionName, verify: Verify) -> None:
    verify(PODS, region)


def test_load_balancers_from_runner(region: RegionName, verify: Verify) -> None:
    verify(RUNNER_CHECK, region)
