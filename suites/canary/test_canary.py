"""Canary weight split (seed 004): a stable and a canary Deployment behind a main Ingress and a
canary Ingress with `canary-weight` (the topology's `ingress.canary_weight`, default 5), in
every cluster with an ingress controller. From the runner, on fresh connections:

- the weight (`test_canary[east/canary.example:weight]`): a sequential test, two one-sided
  SPRTs at w -+ d (netconform.canary: false failure <= 0.1% on a correct split, miss <= 1% at
  a skew of d, d = 5 points or half of w up to 10%), in rounds of 50 counted answers until the
  evidence suffices, capped; non-2xx answers are errors, never counted;
- the overrides (`test_canary[east/canary.example:overrides]`): `X-Canary: always` (and the
  cookie `netconform-canary=always`) send every request to the canary, `never` none (checked
  on `/never`, a canary of weight 100, where an ignored `never` shows at once), the header
  before the cookie; on `/value`, `FOO: bar` (canary-by-header-value) sends every request to
  the canary, any other value falls through to the weight (0 there).

Before sampling, the canary must answer `always` three times in a row (the controller has
taken the Ingresses up), within the `ingress` timeout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from fixtures.checks import Verify
from fixtures.plugin import parametrize_by
from netconform import canary
from netconform.check import Check, Environment, load_manifests, no_cause
from netconform.errors import WaitTimeoutError
from netconform.ingress import Controller, Route, controller, retarget, stale_hint, unpublished
from netconform.outcomes import NOT_SUPPORTED, RUNNER, Case, Endpoint, Outcome, Share, Verdict
from netconform.outcomes import ingress as ingress_route
from netconform.probes import Probe, Task
from netconform.probes.batch import run_batch
from netconform.probes.tally import Tally
from netconform.result import Result
from netconform.scenario import Oracle, Scenario, probe_again
from netconform.topology import Topology
from netconform.vantage import RunnerVantage, Vantage
from netconform.waits import wait_until

MANIFESTS = load_manifests(Path(__file__).with_name("canary.yaml"))
CANARY_INGRESS = "netconform-canary"
ASPECTS = ("weight", "overrides")
PARTS = 5
"""A round's requests go out as this many curl processes at once (each request's draw is
independent, so splitting a round changes nothing but the wall time)."""
ERROR_BUDGET = 0.02
"""Errors (non-2xx, no answer) tolerated in the weight's sample before it fails as such."""
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


@dataclass(frozen=True)
class Track(Outcome):
    """Expected: every answer from one track's pods, and no errors."""

    track: str = ""
    pods: tuple[str, ...] = ()

    def satisfied_by(self, observed: Outcome) -> bool:
        if not isinstance(observed, Tally) or observed.failed or not observed.answered:
            return False
        return observed.count(self.pods) == observed.answered

    def __str__(self) -> str:
        return f"every answer from {self.track}"


@dataclass(frozen=True)
class CanaryWeight(Share):
    """Expected: the sequential test passes for weight `fraction` and `tolerance`; the
    canary's pods say which answers are the canary's."""

    tolerance: float = 0.0
    canary_pods: tuple[str, ...] = ()

    def satisfied_by(self, observed: Outcome) -> bool:
        return isinstance(observed, SplitVerdict) and observed.decision == canary.Decision.PASS

    def plan(self) -> canary.CanaryPlan:
        return canary.CanaryPlan.build(self.fraction, self.tolerance)

    def __str__(self) -> str:
        w, d = canary.percent(self.fraction), canary.percent(self.tolerance)
        return f"canary share {w}% +-{d}"


@dataclass(frozen=True)
class SplitVerdict(Share):
    """Observed: the sequential test's decision, with the share and its 95% interval."""

    decision: str = ""
    requests: int = 0
    text: str = ""

    def __str__(self) -> str:
        return self.text


def keys(topology: Topology) -> list[Route]:
    host = topology.ingress.canary_host
    return [Route(str(c), host, a) for c in topology.names for a in ASPECTS]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_by(metafunc, "aspect", keys)


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


def deploy(
    env: Environment, controllers: dict[str, Controller]
) -> dict[str, dict[str, tuple[str, ...]]]:
    """The backends and Ingresses where a controller is; each cluster's pods per track."""
    pods: dict[str, dict[str, tuple[str, ...]]] = {}
    for cluster, ctl in controllers.items():
        if ctl.unsupported:
            continue
        for manifest in MANIFESTS:
            obj = with_weight(retarget(manifest, env.topology), env.topology.ingress.canary_weight)
            env.apply(cluster, obj)
        client, namespace = env.clusters[cluster], env.topology.cluster(cluster).namespace
        pods[cluster] = {}
        for track, replicas in (("stable", 2), ("canary", 1)):
            env.service(cluster, f"canary-{track}", ready=replicas)
            found = client.objects("Pod", namespace, f"netconform.io/backend=canary-{track}")
            pods[cluster][track] = tuple(sorted(p.metadata.name for p in found))
    return pods


def the_split(env: Environment) -> Scenario:
    topology, host = env.topology, env.topology.ingress.canary_host
    plan = plan_of(topology)
    controllers = {c: controller(client, topology, c) for c, client in env.clusters.items()}
    problems = [c.problem for c in controllers.values() if c.problem]
    if problems:
        raise WaitTimeoutError(problems[0])
    pods = deploy(env, controllers)
    runner = RunnerVantage(topology.runner_netns, timeout=topology.timeouts.exec)
    gate(runner, {c: controllers[c] for c in pods}, host, pods, topology)
    destinations, skipped, expected = [], [], {}
    for cluster, ctl in controllers.items():
        if ctl.unsupported:
            skipped += [
                Case(
                    RUNNER,
                    Endpoint(cluster, host, "", kind="ingress", host=host, path=a),
                    "tally",
                    80,
                    NOT_SUPPORTED,
                    NOT_SUPPORTED,
                    ctl.unsupported,
                )
                for a in ASPECTS
            ]
            continue
        for path in PATHS:
            destinations.append(ingress_route(cluster, host, path, ctl.address))
        expected[cluster] = pods[cluster]
    low, high = max(plan.weight - plan.tolerance, 0), min(plan.weight + plan.tolerance, 1)
    first = part_probes(plan.batch)
    overrides = [
        Probe(
            "tally", 80, (("requests", str(OVERRIDE_REQUESTS)), ("headers", header), ("path", path))
        )
        for path, header, track in OVERRIDES
    ]

    def probes_of(dst: Endpoint) -> list[Probe]:
        mine = [p for p in overrides if p.param("path") == dst.path]
        return [*first, *mine] if dst.path == "/" else mine

    def expect(_src: Endpoint, dst: Endpoint, probe: Probe) -> Outcome:
        if not probe.param("headers"):
            return CanaryWeight(
                Verdict.ALLOW,
                plan.weight,
                low,
                high,
                plan.tolerance,
                expected[dst.cluster]["canary"],
            )
        track = next(t for p, h, t in OVERRIDES if h == probe.param("headers"))
        return Track(Verdict.ALLOW, track, expected[dst.cluster][track])

    return Scenario(
        {RUNNER: runner},
        destinations,
        first,
        settings=topology.probe,
        probes_of=probes_of,
        expect=expect,
        context=lambda _s, d: (
            f"Ingress {env.topology.cluster(d.cluster).namespace}/"
            + (CANARY_INGRESS if d.path == "/" else f"{CANARY_INGRESS}-value")
        ),
        skipped=tuple(skipped),
        explain=lambda cases: split_cause(cases, controllers, stale(env)),
    )


def part_probes(requests: int) -> list[Probe]:
    """One round of `requests` as PARTS tally probes (told apart by their `part`)."""
    sizes = [requests // PARTS + (i < requests % PARTS) for i in range(PARTS)]
    return [
        Probe("tally", 80, (("requests", str(n)), ("part", str(i))))
        for i, n in enumerate(sizes)
        if n
    ]


def gate(
    runner: Vantage,
    controllers: dict[str, Controller],
    host: str,
    pods: dict[str, dict[str, tuple[str, ...]]],
    topology: Topology,
) -> None:
    """Until the canary answers `always` three times in a row in every cluster (bounded by
    the `ingress` timeout; what is still not served then shows in the cases)."""
    probe = Probe("tally", 80, (("requests", "3"), ("headers", "X-Canary:always")))
    tasks = [
        Task(c, probe, ingress_route(c, host, "/", ctl.address)) for c, ctl in controllers.items()
    ]

    def canary_answers() -> bool:
        seen = run_batch(runner, tasks, topology.probe)
        return all(
            isinstance(o := seen[c].outcome, Tally) and o.count(pods[c]["canary"]) == 3
            for c in controllers
        )

    if tasks:  # measured anyway once it times out: each case then says what is served
        with contextlib.suppress(WaitTimeoutError):
            wait_until(
                canary_answers, timeout=topology.timeouts.ingress, name="ingress", interval=0.2
            )


def stale(env: Environment) -> set[str]:
    return {
        c
        for c, client in env.clusters.items()
        if unpublished(client, env.topology.cluster(c).namespace, CANARY_INGRESS)
    }


def sample(scenario: Scenario, oracle: Oracle, result: Result) -> Result:
    """The weight's rounds: each weight case's sequential test, one batch a round; the parts
    of each round summed, one case per destination in the end."""
    weight_cases = [c for c in result.cases if isinstance(c.expected, CanaryWeight)]
    if not weight_cases:
        return result
    weights = {
        c.destination: c.expected for c in weight_cases if isinstance(c.expected, CanaryWeight)
    }
    states = {dst: w.plan().state() for dst, w in weights.items()}
    errors: dict[Endpoint, int] = dict.fromkeys(states, 0)
    tallies = {
        dst: summed(c.observed for c in weight_cases if c.destination == dst) for dst in states
    }
    for round_number in range(max(len(s.plan.rounds()) for s in states.values()) + 1):
        for dst, tally in tallies.items():
            record(states[dst], errors, dst, tally, weights[dst].canary_pods)
        open_ = [d for d, s in states.items() if s.decision == canary.Decision.CONTINUE]
        if not open_:
            break
        tasks = [
            Task(f"r{round_number}-{i}-{j}", probe, d)
            for i, d in enumerate(open_)
            for j, probe in enumerate(part_probes(states[d].next_round()))
        ]
        seen = probe_again(scenario, oracle, {RUNNER: tasks})
        tallies = {
            d: summed(seen[RUNNER, t.id].observed for t in tasks if t.destination == d)
            for d in open_
        }
    judged = {dst: verdict_of(states[dst], errors[dst]) for dst in states}
    kept, done = [], set()
    for case in result.cases:
        if not isinstance(case.expected, CanaryWeight):
            kept.append(case)
        elif case.destination not in done:
            done.add(case.destination)
            verdict = judged[case.destination]
            ingress_name = case.detail.split(",")[0]
            kept.append(
                replace(case, observed=verdict, detail=f"{ingress_name}, {rounds_detail(verdict)}")
            )
    return replace(result, cases=tuple(kept))


def summed(observed: Iterable[Outcome]) -> Outcome:
    """The parts of one round as one Tally (the first failure when a part got no Tally)."""
    total = Tally(Verdict.ALLOW)
    for part in observed:
        if not isinstance(part, Tally):
            return part
        total = total + part
    return total


def record(
    state: canary.CanaryState,
    errors: dict[Endpoint, int],
    dst: Endpoint,
    observed: Outcome,
    canary_pods: tuple[str, ...],
) -> None:
    """One round's answers into the test (errors counted apart, never as either track)."""
    if state.decision != canary.Decision.CONTINUE:
        return
    if not isinstance(observed, Tally):  # no answer at all this round: nothing to weigh
        errors[dst] += state.next_round()
        state.decision = canary.Decision.FAIL
        return
    errors[dst] += observed.failed
    canaries = observed.count(canary_pods)
    state.update(canaries, observed.answered - canaries)
    if errors[dst] > ERROR_BUDGET * max(state.requests + errors[dst], state.plan.batch):
        state.decision = canary.Decision.FAIL


def rounds_detail(verdict: SplitVerdict) -> str:
    return f"{verdict.requests} counted answers in rounds of {canary.DEFAULT_BATCH}"


def verdict_of(state: canary.CanaryState, errors: int) -> SplitVerdict:
    low, high = canary.clopper_pearson(state.canary, state.requests) if state.requests else (0, 1)
    text = state.message() if state.requests else "FAIL: no counted answer at all"
    if errors:
        text += f"; {errors} request(s) failed (non-2xx or no answer: never counted)"
    return SplitVerdict(
        Verdict.ALLOW, state.share(), low, high, str(state.decision), state.requests, text
    )


def split_cause(cases: Sequence[Case], controllers: dict[str, Controller], stale: set[str]) -> str:
    hints = []
    for cluster in sorted({c.destination.cluster for c in cases if not c.passed}):
        if cluster in stale:
            hints.append(stale_hint(cluster, CANARY_INGRESS))
            continue
        mine = [c for c in cases if c.destination.cluster == cluster and not c.passed]
        tracks = [c for c in mine if isinstance(c.expected, Track)]
        if tracks and all(
            isinstance(c.observed, Tally) and not c.observed.answered for c in tracks
        ):
            hints.append(
                f"{cluster}'s ingress controller at {controllers[cluster].address} "
                "answers no request for the canary host"
            )
            continue
        for case in mine:
            seen, wanted = case.observed, case.expected
            if isinstance(seen, SplitVerdict) and seen.requests and isinstance(wanted, Share):
                hints.append(
                    f"the canary Ingress {CANARY_INGRESS} in {cluster} says "
                    f"{canary.percent(wanted.fraction)}% but the controller sends "
                    f"{seen.fraction:.1%} of requests to the canary"
                )
    return "; ".join(hints)


SPLIT = Check("canary", __doc__ or "", the_split, slice_by=aspect_of, cause=no_cause, refine=sample)


def test_canary(aspect: Route, verify: Verify) -> None:
    verify(SPLIT, aspect)
