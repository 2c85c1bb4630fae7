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
from pathlib import Path

import pytest

from fixtures.checks import Verify
from fixtures.collection import parametrize_by
from netconform.check import Check, Environment, load_manifests, no_cause
from netconform.checks.canary import (
    ASPECTS,
    CANARY_INGRESS,
    PATHS,
    aspect_of,
    keys,
    override_probes,
    overrides_only,
    plan_of,
    split_cause,
    track_of,
    with_weight,
)
from netconform.errors import WaitTimeoutError
from netconform.ingress import Controller, Route, controller, retarget, unpublished
from netconform.outcomes import NOT_SUPPORTED, RUNNER, Case, Endpoint, Outcome, Verdict
from netconform.outcomes import ingress as ingress_route
from netconform.probes import Probe, Task
from netconform.probes.batch import run_batch
from netconform.probes.tally import Tally
from netconform.scenario import Scenario
from netconform.split import CanaryWeight, Track, part_probes, sample
from netconform.topology import Topology
from netconform.vantage import RunnerVantage, Vantage
from netconform.waits import wait_until

MANIFESTS = load_manifests(Path(__file__).with_name("canary.yaml"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_by(metafunc, "aspect", keys)


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
    runner = RunnerVantage.of(topology)
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
    overrides = override_probes()

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
        track = track_of(probe.param("headers"))
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


SPLIT = Check(
    "canary",
    __doc__ or "",
    the_split,
    slice_by=aspect_of,
    cause=no_cause,
    refine=sample,
    smoke=overrides_only,
    cost=8,  # the weight's sequential test: about 1,150 requests a cluster at 5%
)


def test_canary(aspect: Route, verify: Verify) -> None:
    verify(SPLIT, aspect)
