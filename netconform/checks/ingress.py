"""The ingress suite's routes, expectations, slices and likely causes (`suites/ingress`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from netconform.cidr import between
from netconform.ingress import Controller, Route, route_of, stale_hint
from netconform.outcomes import Case, Endpoint, HttpStatus, Outcome, Served, Verdict, ingress
from netconform.result import region_pair
from netconform.topology import Topology

INGRESS = "netconform-routing"
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
NO_INTERNAL = "no ingress controller behind an internal LoadBalancer"
INTERNAL = "ingress-internal"
SILENT = (Verdict.TIMEOUT, Verdict.REFUSED, Verdict.UNREACHABLE)


@dataclass(frozen=True)
class NoEndpoints(HttpStatus):
    """Expected: 503 because the backend Service has no ready endpoints."""

    backend: str = ""

    def __str__(self) -> str:
        return f"HTTP 503 ({self.backend} has no ready endpoints)"


def routes(topology: Topology) -> list[Route]:
    host = topology.ingress.routing_host
    return [Route(str(c), h.format(host=host), p) for c in topology.names for h, p, _ in ROUTES]


def expected_answer(answer: str | int, cluster: str, pods: dict[str, tuple[str, ...]]) -> Outcome:
    if isinstance(answer, str):
        return Served(Verdict.ALLOW, 200, f"{cluster}/{answer}", pods[answer])
    if answer == 503:
        return NoEndpoints(Verdict.ALLOW, 503, backend=f"{cluster}/ing-zero")
    return HttpStatus(Verdict.ALLOW, answer)


def internal_route(cluster: str, host: str, ctl: Controller) -> Endpoint:
    """Seed 003's request: the routing host's /foo through the cluster's internal LB."""
    dst = ingress(cluster, host, "/foo", ctl.internal)
    return Endpoint(cluster, dst.name, dst.ip, kind=INTERNAL, host=dst.host, path=dst.path)


def slice_key(case: Case) -> str:
    """Routes by route id; the internal LB flow by region pair (`c1->c2`)."""
    return region_pair(case) if case.destination.kind == INTERNAL else route_of(case)


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
        mine = [c for c in routed if c.destination.cluster == cluster]
        hints.append(_cluster_cause(cluster, mine, controllers, cluster in stale))
    return "; ".join(h for h in hints if h)


def _cluster_cause(
    cluster: str, mine: list[Case], controllers: dict[str, Controller], stale: bool
) -> str:
    failed = [c for c in mine if not c.passed]
    address = controllers[cluster].address if cluster in controllers else "?"
    # a backend answering as its rule says proves the controller serves this run's Ingress
    served = any(c.passed and isinstance(c.expected, Served) for c in mine)
    if all(c.observed.verdict in SILENT for c in mine):
        return (
            f"{cluster}'s ingress controller does not answer at {address} on any "
            "route (its pods in ingress-nginx, or the path to its LoadBalancer)"
        )
    if stale and not served and not controllers.get(cluster, Controller(cluster, "")).unsupported:
        return stale_hint(cluster, INGRESS)
    if all(isinstance(c.observed, HttpStatus) and c.observed.code == 404 for c in mine):
        return (
            f"{cluster}'s ingress controller answers 404 on every route of this "
            "run's Ingress: it has not applied it (a stale controller, or the "
            "Ingress's class is not its own)"
        )
    quiet = {c.source.label for c in failed if c.observed.verdict in SILENT}
    heard = {c.source.label for c in mine if c.observed.verdict not in SILENT}
    if quiet and not quiet & heard and all(c.observed.verdict in SILENT for c in failed):
        return (
            f"{cluster}'s ingress controller at {address} answers {', '.join(sorted(heard))} "
            f"but nothing from {', '.join(sorted(quiet))}: the path from there to it, not "
            "the Ingress rules"
        )
    wrong = [c for c in failed if c.observed.verdict not in SILENT]
    if wrong and {route_of(c) for c in wrong} < {route_of(c) for c in mine}:
        names = sorted({f"{c.destination.host}{c.destination.path}" for c in wrong})
        return (
            f"{cluster} answers {', '.join(names)} against the Ingress rules "
            "while its other routes answer as written"
        )
    return ""


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
            silent = all(c.observed.verdict in SILENT for c in pair if not c.passed)
            served = any(c.passed for c in own)  # what the claims below compare with
            if found and silent and served:
                ranges = ", ".join(sorted({o.a_cidr for o in found}))
                hints.append(
                    f"{src} and {dst} overlap ({ranges}): {dst}'s internal LoadBalancer "
                    f"{address} answers {dst}'s own pods but not {src}'s; without source NAT "
                    f"at {src}'s gateway into the shared network, {dst} sees a client inside "
                    f"its own copy of {ranges} and routes the reply there (seed 003)"
                )
            elif silent and served:
                hints.append(
                    f"the path from {src} to {dst}'s internal LoadBalancer {address} "
                    f"drops what {dst}'s own pods get answered"
                )
            elif silent:
                hints.append(
                    f"{src}'s pods get no answer from {dst}'s internal LoadBalancer {address}"
                )
            else:
                hints.append(
                    f"{dst}'s internal LoadBalancer {address} answers {src}'s pods, but not as "
                    "the Ingress rules say"
                )
    return "; ".join(hints)
