"""Ingress routing (seeds 003 and 004): host and path rules through every cluster's ingress
controller, from the runner and from a probe pod of every region; the request names the
backend that answered, which must be the rule's Service. Longest prefix first, Exact only
exact, a prefix only on `/` boundaries, `*.` for one label, 404 from the default backend for
an unknown host or path, 503 for a Service scaled to zero. One test per route
(`test_ingress[east/echo.example:/foo]`); a cluster without the topology's IngressClass is
`not supported`.

Seed 003's flow (`test_ingress_internal[c1->c2]`): where a cluster exposes its controller on
an internal LoadBalancer (the overlap layout: two clusters on one pod CIDR joined by a shared
network), every probe pod of every cluster requests the routing host through it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fixtures.checks import Verify
from fixtures.collection import parametrize_by
from fixtures.plugin import RegionName, RegionPair
from netconform.check import Check, Environment, load_manifests, no_cause
from netconform.checks.ingress import (
    BACKENDS,
    INGRESS,
    NO_INTERNAL,
    ROUTES,
    expected_answer,
    ingress_cause,
    internal_route,
    routes,
    slice_key,
)
from netconform.cluster import ClusterClient
from netconform.errors import WaitTimeoutError
from netconform.ingress import Controller, Route, controller, live_objects, retarget, unpublished
from netconform.ingressaudit import audit
from netconform.outcomes import NOT_SUPPORTED, RUNNER, Case, Endpoint, ingress
from netconform.probes import Probe
from netconform.profiles import one_destination_per_host
from netconform.scenario import Scenario
from netconform.topology import Topology
from netconform.vantage import RunnerVantage, Vantage

MANIFESTS = load_manifests(Path(__file__).with_name("ingress.yaml"))
HTTP = Probe("http", 80)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_by(metafunc, "route", routes)


def deploy(env: Environment) -> dict[str, Controller]:
    """The backends and the Ingress in every cluster that has an ingress controller."""
    found = {c: controller(client, env.topology, c) for c, client in env.clusters.items()}
    for cluster, ctl in found.items():
        if not ctl.unsupported:
            for manifest in MANIFESTS:
                env.apply(cluster, retarget(manifest, env.topology))
    return found


def backend_pods(env: Environment, cluster: str) -> dict[str, tuple[str, ...]]:
    """Each backend Service's ready pods (once its endpoints are ready)."""
    client, namespace = env.clusters[cluster], env.topology.cluster(cluster).namespace
    pods = {}
    for name, replicas in BACKENDS.items():
        env.service(cluster, name, ready=replicas)
        found = client.objects("Pod", namespace, f"netconform.io/backend={name}")
        pods[name] = tuple(sorted(p.metadata.name for p in found))
    return pods


def sources(env: Environment, every_pod: bool = False) -> dict[Endpoint, Vantage]:
    """One probe pod per region (every probe pod with `every_pod`)."""
    pods = env.probe_pods()
    chosen = [p for ps in pods.values() for p in (ps if every_pod else ps[:1])]
    return {p: env.vantage(p) for p in chosen}


def through_ingress(env: Environment) -> Scenario:
    """Every route of every cluster from the runner and one probe pod per region; and each
    internal LoadBalancer in front of a controller from every probe pod of every region."""
    controllers = deploy(env)
    host = env.topology.ingress.routing_host
    answers = {(h.format(host=host), p): a for h, p, a in ROUTES}
    destinations, skipped, expected = [], [], {}
    pod_sources = sources(env, every_pod=any(c.internal for c in controllers.values()))
    for cluster, ctl in controllers.items():
        if ctl.problem:
            raise WaitTimeoutError(ctl.problem)
        pods = backend_pods(env, cluster) if not ctl.unsupported else {}
        for route in (r for r in routes(env.topology) if r.cluster == cluster):
            dst = ingress(cluster, route.host, route.path, ctl.address)
            if ctl.unsupported:
                skipped.append(
                    Case(RUNNER, dst, "http", 80, NOT_SUPPORTED, NOT_SUPPORTED, ctl.unsupported)
                )
                continue
            destinations.append(dst)
            expected[dst] = expected_answer(answers[route.host, route.path], cluster, pods)
        internal = internal_route(cluster, host, ctl)
        if ctl.internal and not ctl.unsupported:
            destinations.append(internal)
            expected[internal] = expected_answer("ing-foo", cluster, pods)
        else:
            why = ctl.unsupported or NO_INTERNAL
            skipped += [
                Case(src, internal, "http", 80, NOT_SUPPORTED, NOT_SUPPORTED, why)
                for src in pod_sources
            ]
    runner = RunnerVantage.of(env.topology)

    def include(src: Endpoint, dst: Endpoint) -> bool:  # internal LBs: from the pods only
        return dst.kind == "ingress" or src.kind == "pod"

    return Scenario(
        {RUNNER: runner, **pod_sources},
        destinations,
        [HTTP],
        include,
        settings=env.topology.probe,
        expect=lambda _s, d, _p: expected[d],
        context=lambda _s, d: f"Ingress {env.topology.cluster(d.cluster).namespace}/{INGRESS}",
        explain=lambda cases: ingress_cause(cases, controllers, env.topology, stale(env)),
        skipped=tuple(skipped),
    )


def stale(env: Environment) -> set[str]:
    """Clusters whose controller has not published this run's Ingress (read once, at the
    end of the measurement)."""
    return {
        c
        for c, client in env.clusters.items()
        if unpublished(client, env.topology.cluster(c).namespace, INGRESS)
    }


ROUTING = Check(
    "ingress",
    __doc__ or "",
    through_ingress,
    slice_by=slice_key,
    cause=no_cause,
    converges=True,
    smoke=one_destination_per_host,  # one request set per Ingress host
)


def test_ingress(route: Route, verify: Verify) -> None:
    verify(ROUTING, route)


def test_ingress_internal(region_pair: RegionPair, verify: Verify) -> None:
    verify(ROUTING, region_pair)


def test_ingress_audit(
    region: RegionName,
    clusters: dict[str, ClusterClient],
    topology: Topology,
    workload_labels: dict[str, str],
) -> None:
    """The live Ingresses of the cluster's region namespace, read for what the controller
    would serve wrong or not at all (netconform.ingressaudit): findings, no traffic. This
    run's own Ingresses are left to the routing checks (one of them is 503 on purpose)."""
    client, cluster = clusters[str(region)], topology.cluster(str(region))
    classes = {c.metadata.name for c in client.objects("IngressClass", "")}
    if topology.ingress.ingress_class not in classes:
        pytest.skip(f"not supported: {region} has no IngressClass {topology.ingress.ingress_class}")
    objects = live_objects(client, [cluster.namespace], skip_labelled=workload_labels)
    now = dt.datetime.now(dt.UTC)
    found = audit(objects, topology.ingress.ingress_class, now, topology.ingress.tls_expiry_days)
    if found:
        lines = "\n".join(f"  {f}" for f in found)
        pytest.fail(
            f"{region}: {len(found)} finding(s) in the Ingresses of namespace "
            f"{cluster.namespace}:\n{lines}",
            pytrace=False,
        )
