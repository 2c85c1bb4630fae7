"""The canary suite's overrides, expectations, slices and likely causes (`suites/canary`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from netconform import canary
from netconform.ingress import Controller, Route, stale_hint
from netconform.outcomes import Case, Endpoint, Share
from netconform.probes import Probe
from netconform.probes.tally import Tally
from netconform.scenario import Scenario
from netconform.split import CanaryWeight, SplitVerdict
from netconform.topology import Topology

CANARY_INGRESS = "netconform-canary"
ASPECTS = ("weight", "overrides")
#: (path, header sent, the track every answer must come from): `always` where the weight
#: sends few requests to the canary, `never` where it sends all of them (`/never`, weight 100)
OVERRIDES = (
    ("/", "X-Canary:always", "canary"),
    ("/", "Cookie:netconform-canary=always", "canary"),
    ("/never", "X-Canary:never", "stable"),
    ("/never", "Cookie:netconform-canary=never", "stable"),
    ("/never", "X-Canary:never,Cookie:netconform-canary=always", "stable"),  # header first
    ("/value", "FOO:bar", "canary"),
    ("/value", "FOO:baz", "stable"),
)
OVERRIDE_REQUESTS = 10
"""Per override: an override ignored shows at once (weight 5 sends 95% stable, 100 none)."""
PATHS = {
    "/": CANARY_INGRESS,
    "/never": f"{CANARY_INGRESS}-never",
    "/value": f"{CANARY_INGRESS}-value",
}


def keys(topology: Topology) -> list[Route]:
    host = topology.ingress.canary_host
    return [Route(str(c), host, a) for c in topology.names for a in ASPECTS]


def aspect_of(case: Case) -> str:
    dst = case.destination
    if dst.path in ASPECTS:  # a not-supported case, made for its aspect
        name = dst.path
    else:
        name = "weight" if isinstance(case.expected, (CanaryWeight, Share)) else "overrides"
    return f"{dst.cluster}/{dst.host}:{name}"


def plan_of(topology: Topology) -> canary.CanaryPlan:
    tolerance = topology.ingress.canary_tolerance / 100 or None
    return canary.CanaryPlan.build(
        canary.effective_weight(topology.ingress.canary_weight), tolerance
    )


def with_weight(manifest: dict[str, object], weight: int) -> dict[str, object]:
    """The canary Ingress with the topology's weight."""
    meta = manifest["metadata"]
    if isinstance(meta, dict) and meta.get("name") == CANARY_INGRESS:
        notes = {**meta["annotations"], "nginx.ingress.kubernetes.io/canary-weight": str(weight)}
        return {**manifest, "metadata": {**meta, "annotations": notes}}
    return manifest


def override_probes() -> list[Probe]:
    return [
        Probe(
            "tally", 80, (("requests", str(OVERRIDE_REQUESTS)), ("headers", header), ("path", path))
        )
        for path, header, _track in OVERRIDES
    ]


def split_cause(cases: Sequence[Case], controllers: dict[str, Controller], stale: set[str]) -> str:
    """Per failing cluster, what its cases agree on: not taken up, no backend reached, the
    weight test stopped on errors, or the share the controller really sends."""
    hints = []
    for cluster in sorted({c.destination.cluster for c in cases if not c.passed}):
        everything = [c for c in cases if c.destination.cluster == cluster]
        hint = _cluster_cause(cluster, everything, controllers[cluster].address, cluster in stale)
        hints += [hint] if hint else []
    return "; ".join(hints)


def _reached(case: Case) -> bool:
    """Some request of the case was answered by a backend pod."""
    seen = case.observed
    return (isinstance(seen, Tally) and seen.answered > 0) or (
        isinstance(seen, SplitVerdict) and seen.requests > 0
    )


def _cluster_cause(cluster: str, everything: list[Case], address: str, stale: bool) -> str:
    mine = [c for c in everything if not c.passed]
    if stale and not any(c.passed for c in everything):  # an answer as written: taken up
        return stale_hint(cluster, CANARY_INGRESS)
    if not any(_reached(c) for c in everything):
        errors = sorted({e for c in mine if isinstance(c.observed, Tally)
                         for e, _n in c.observed.errors})  # fmt: skip
        said = f" (only {', '.join(errors)})" if errors else ""
        return (
            f"{cluster}'s ingress controller at {address} answers no request for the canary "
            f"host from either backend{said}: the controller or the path to it, not the weight"
        )
    hints = []
    for case in mine:
        seen, wanted = case.observed, case.expected
        if not (isinstance(seen, SplitVerdict) and isinstance(wanted, Share)):
            continue
        if seen.failed_requests:  # stopped on errors: no share to blame
            hints.append(
                f"the weight test in {cluster} stopped on failed requests, not on the "
                f"share: {seen.failed_requests}"
            )
        elif seen.requests:
            hints.append(
                f"the canary Ingress {CANARY_INGRESS} in {cluster} says "
                f"{canary.percent(wanted.fraction)}% but the controller sends "
                f"{seen.fraction:.1%} of requests to the canary"
            )
    return "; ".join(hints)


def overrides_only(scenario: Scenario) -> Scenario:
    """The smoke profile: the overrides (a handful of requests each: the canary is routed at
    all, header and cookie win), not the weight's sequential test, whose error bounds need
    its requests (it runs in the full profile)."""
    probes_of = scenario.probes_of or (lambda _d: scenario.probes)

    def only_overrides(dst: Endpoint) -> list[Probe]:
        return [p for p in probes_of(dst) if p.param("headers")]

    return replace(scenario, probes=[], probes_of=only_overrides)


def track_of(header: str) -> str:
    """The track every answer to an override with `header` must come from."""
    return next(t for _p, h, t in OVERRIDES if h == header)
