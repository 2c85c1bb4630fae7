"""NetworkPolicy, the Calico stars demo (seed 004) step by step, in every cluster.

The demo's namespaces and pods (management UI, frontend, backend, client, each on its own
port) are deployed in each cluster, then its policies are applied one step at a time: no
policy, default deny in stars and client, allow the UI, frontend -> backend on 6379, client ->
frontend on 80. After each step every pod probes every other on its port (TCP), re-probing
until observed equals the oracle's expectation or the `converge` timeout ends, then once more
in full; the test of a (cluster, step) fails with its findings and truth tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from fixtures.checks import Verify
from fixtures.plugin import STATE, Label
from fixtures.workloads import Workloads
from netconform.check import load_manifests
from netconform.outcomes import Case, Endpoint
from netconform.policycheck import PolicyCheck, measure_step, read_policy_set, step_of
from netconform.probes import Probe
from netconform.result import Result
from netconform.scenario import Scenario
from netconform.vantage import PodVantage, Vantage

HERE = Path(__file__).parent
APPS = load_manifests(HERE / "stars-apps.yaml")
POLICIES = load_manifests(HERE / "stars-policies.yaml")
NAMESPACES = tuple(m["metadata"]["name"] for m in APPS if m["kind"] == "Namespace")
STEPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("step-1-no-policy", frozenset()),
    ("step-2-default-deny", frozenset({"stars/default-deny", "client/default-deny"})),
    ("step-3-allow-ui", frozenset({"stars/allow-ui", "client/allow-ui"})),
    ("step-4-backend", frozenset({"stars/backend-policy"})),
    ("step-5-frontend", frozenset({"stars/frontend-policy"})),
)
"""Each step adds its policies to those of the steps before it."""
SMOKE_STEPS = (STEPS[0], (STEPS[-1][0], frozenset().union(*(added for _, added in STEPS))))
"""The smoke profile: no policy, then every policy of the demo at once (its last step)."""


def deploy(env: Workloads) -> Scenario:
    """The demo's namespaces and pods in every cluster; each pod probes the others of its
    cluster on their own port."""
    vantages: dict[Endpoint, Vantage] = {}
    probes: dict[Endpoint, list[Probe]] = {}

    def deploy_in(cluster: str) -> None:  # every cluster at once: their waits overlap
        client = env.clusters[cluster]
        for manifest in APPS:
            if manifest["kind"] == "Namespace":
                env.namespace(cluster, manifest)
        for manifest in APPS:
            if manifest["kind"] == "Pod":
                meta = manifest["metadata"]
                pod = env.labelled(manifest, meta["namespace"], meta["name"])
                pod["spec"]["containers"][0]["image"] = env.topology.images.probe
                env.apply_in(cluster, meta["namespace"], pod)
        selector = ",".join(f"{k}={v}" for k, v in env.labels.items())
        for namespace in NAMESPACES:
            want = sum(m["metadata"].get("namespace") == namespace for m in APPS)
            for pod in client.wait_pods_ready(namespace, selector, want):
                name, ip = pod.metadata.name, pod.status.pod_ip
                endpoint = Endpoint(cluster, f"{namespace}/{name}", ip, pod.spec.node_name)
                vantages[endpoint] = PodVantage(client, namespace, name)
                probes[endpoint] = [Probe("tcp", pod.spec.containers[0].ports[0].container_port)]

    with ThreadPoolExecutor(max_workers=len(env.clusters) or 1) as pool:
        list(pool.map(deploy_in, env.clusters))

    def same_cluster(src: Endpoint, dst: Endpoint) -> bool:
        return src.cluster == dst.cluster and src != dst

    destinations = sorted(vantages, key=lambda e: e.label)
    # a drop costs the connect timeout on every step: 1 s, as the k8s e2e netpol tests wait
    settings = replace(
        env.topology.probe, connect_timeout=min(env.topology.probe.connect_timeout, 1.0)
    )
    return Scenario(
        vantages, destinations, (), same_cluster, settings=settings, probes_of=probes.__getitem__
    )


def set_policies(env: Workloads, present: frozenset[str]) -> None:
    """Exactly the demo's policies named in `present` exist in every cluster."""

    def set_in(cluster: str) -> None:
        client = env.clusters[cluster]
        for manifest in POLICIES:
            meta = manifest["metadata"]
            if f"{meta['namespace']}/{meta['name']}" in present:
                env.apply_in(cluster, meta["namespace"], manifest)
            else:
                client.delete("NetworkPolicy", meta["name"], meta["namespace"])

    with ThreadPoolExecutor(max_workers=len(env.clusters) or 1) as pool:
        list(pool.map(set_in, env.clusters))


def measure(env: Workloads, steps: Sequence[tuple[str, frozenset[str]]] = STEPS) -> Result:
    scenario = deploy(env)
    cases: list[Case] = []
    present: frozenset[str] = frozenset()
    for step, added in steps:
        present |= added
        set_policies(env, present)
        policies = read_policy_set(env.clusters, {c: NAMESPACES for c in env.clusters})
        converge = env.topology.timeouts.converge
        cases += measure_step(scenario, policies, converge, step).cases
    return Result(tuple(cases))


def _unused(_env: object) -> Scenario:
    raise NotImplementedError("the stars check measures with `measure`")


CHECK = PolicyCheck(
    "network-policy-stars",
    __doc__ or "",
    _unused,
    slice_by=lambda c: f"{c.source.cluster}/{step_of(c)}",
    measure=measure,
    smoke_measure=partial(measure, steps=SMOKE_STEPS),
    cost=10,  # five steps, each re-probed until it converges
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = metafunc.config.stash.get(STATE, None)
    if state is None or "stars_case" not in metafunc.fixturenames:
        return
    names = [str(n) for n in state.load_topology().names]
    ids = [f"{region}/{step}" for step, _ in STEPS for region in names]
    metafunc.parametrize("stars_case", [Label(i) for i in ids], ids=ids)


def test_stars(stars_case: Label, verify: Verify) -> None:
    verify(CHECK, stars_case)
