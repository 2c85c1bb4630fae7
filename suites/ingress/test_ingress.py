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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.checks import Verify
from fixtures.collection import parametrize_by
from fixtures.plugin import RegionName, RegionPair
from netconform.check import Check, Environment, load_manifests, no_cause
from netconform.cidr import between
from netconform.cluster import ClusterClient
from netconform.errors import WaitTimeoutError
from netconform.ingress import (
    Controller,
    Route,
    controller,
    live_objects,
    retarget,
    route_of,
    stale_hint,
    unpublished,
)
from netconform.ingressaudit import audit
from netconform.outcomes import (
    NOT_SUPPORTED,
    RUNNER,
    Case,
    Endpoint,
    HttpStatus,
    Outcome,
    Served,
    Verdict,
    ingress,
)
from netconform.probes import Probe
from netconform.profiles import one_destination_per_host
from netconform.result import region_pair
from netconform.scenario import Scenario
from netconform.topology import Topology
from netconform.vantage import RunnerVantage, Vantage

MANIFESTS = load_manifests(Path(__file__).with_name("ingress.yaml"))
INGRESS = "netconform-routing"
HTTP = Probe("http", 80)
BACKENDS = {"ing-foo": 2, "ing-bar": 1, "ing-zero": 0}
#: (host, path, what answers): a backend Service, or the status the controller answers with.
ROUTES: tuple[tuple[str, str, str | int], ...] = (
    ("{host}", "/foo", "ing-foo"),
    ("{host}", "/foo/bar", "ing-bar"),  # the longest prefix wins
    ("{host}", "/foo/baz", "ing-foo"),
    ("{host}", "/foobar", 404),  # Prefix matches whole path elements only
    ("{host}", "/exact", "ing-bar"),
    ("{host}", "/exact/more", 404),  # Exact is exact
    ("a.{host}", "/", "ing-foo"),  # *.host covers one label
    ("unknown.invalid", "/", 404),  # the default backend
    ("{host}", "/zero", 503),  # scaled to zero: no ready endpoints
)


@dataclass(frozen=True)
class NoEndpoints(HttpStatus):
    """Expected: 503 because the backend Service has no ready endpoints."""

    backend: str = ""

    def __str__(self) -> str:
        return f"HTTP 503 ({self.backend} has no ready endpoints)"


def routes(topology: Topology) -> list[Route]:
    host = topology.ingress.routing_host
    return [Route(str(c), h.format(host=host), p) for c in topology.names for h, p, _ in ROUTES]


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


def expected_answer(answer: str | int, cluster: str, pods: dict[str, tuple[str, ...]]) -> Outcome:
    if isinstance(answer, str):
        return Served(Verdict.ALLOW, 200, f"{cluster}/{answer}", pods[answer])
    if answer == 503:
        return NoEndpoints(Verdict.ALLOW, 503, backend=f"{cluster}/ing-zero")
    return HttpStatus(Verdict.ALLOW, answer)


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


NO_INTERNAL = "no ingress controller behind an internal LoadBalancer"
INTERNAL = "ingress-internal"


def internal_route(cluster: str, host: str, ctl: Controller) -> Endpoint:
    """Seed 003's request: the routing host's /foo through the cluster's internal LB."""
    dst = ingress(cluster, host, "/foo", ctl.internal)
    return Endpoint(cluster, dst.name, dst.ip, kind=INTERNAL, host=dst.host, path=dst.path)


def slice_key(case: Case) -> str:
    """Routes by route id; the internal LB flow by region pair (`c1->c2`)."""
    return region_pair(case) if case.destination.kind == INTERNAL else route_of(case)


def stale(env: Environment) -> set[str]:
    """Clusters whose controller has not published this run's Ingress (read once, at the
    end of the measurement)."""
    return {
        c
        for c, client in env.clusters.items()
        if unpublished(client, env.topology.cluster(c).namespace, INGRESS)
    }


def ingress_cause(
    cases: Sequence[Case],
    controllers: dict[str, Controller],
    topology: Topology,
    stale: set[str],
) -> str:
    """A cause only where every case it speaks of agrees with it."""
    hints = [internal_cause(cases, topology)]
    routed = [c for c in cases if c.destination.kind == "ingress"]
    for cluster in sorted({c.destination.cluster for c in routed if not c.passed}):
        if cluster in stale and not controllers[cluster].unsupported:
            hints.append(stale_hint(cluster, INGRESS))
            continue
        mine = [c for c in routed if c.destination.cluster == cluster]
        failed = [c for c in mine if not c.passed]
        address = controllers[cluster].address if cluster in controllers else "?"
        if all(c.observed.verdict in SILENT for c in mine):
            hints.append(
                f"{cluster}'s ingress controller does not answer at {address} on any "
                "route (its pods in ingress-nginx, or the path to its LoadBalancer)"
            )
        elif all(isinstance(c.observed, HttpStatus) and c.observed.code == 404 for c in mine):
            hints.append(
                f"{cluster}'s ingress controller answers 404 on every route of this "
                "run's Ingress: it has not applied it (a stale controller, or the "
                "Ingress's class is not its own)"
            )
        elif {route_of(c) for c in failed} < {route_of(c) for c in mine}:
            names = sorted({f"{c.destination.host}{c.destination.path}" for c in failed})
            hints.append(
                f"{cluster} answers {', '.join(names)} against the Ingress rules "
                "while its other routes answer as written"
            )
    return "; ".join(h for h in hints if h)


SILENT = (Verdict.TIMEOUT, Verdict.REFUSED, Verdict.UNREACHABLE)


def internal_cause(cases: Sequence[Case], topology: Topology) -> str:
    """Seed 003: an internal LB that answers its own cluster but times out for a cluster on
    the same pod range is a reply routed into the wrong copy of that range."""
    internal = [c for c in cases if c.destination.kind == INTERNAL]
    hints = []
    for dst in sorted({c.destination.cluster for c in internal if not c.passed}):
        own = [c for c in internal if c.destination.cluster == dst == c.source.cluster]
        address = next(c.destination.ip for c in internal if c.destination.cluster == dst)
        if own and not any(c.passed for c in own):
            hints.append(
                f"{dst}'s internal LoadBalancer {address} does not serve even {dst}'s own pods"
            )
            continue
        for src in sorted(
            {c.source.cluster for c in internal if c.destination.cluster == dst and not c.passed}
            - {dst}
        ):
            pair = [c for c in internal if (c.source.cluster, c.destination.cluster) == (src, dst)]
            found = between(topology, src, dst)
            if found and all(c.observed.verdict in SILENT for c in pair if not c.passed):
                ranges = ", ".join(sorted({o.a_cidr for o in found}))
                hints.append(
                    f"{src} and {dst} overlap ({ranges}): {dst}'s internal LoadBalancer "
                    f"{address} answers {dst}'s own pods but not {src}'s; without source NAT "
                    f"at {src}'s gateway into the shared network, {dst} sees a client inside "
                    f"its own copy of {ranges} and routes the reply there (seed 003)"
                )
            elif not found:
                hints.append(
                    f"the path from {src} to {dst}'s internal LoadBalancer {address} "
                    f"drops what {dst}'s own pods get answered"
                )
    return "; ".join(hints)


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
