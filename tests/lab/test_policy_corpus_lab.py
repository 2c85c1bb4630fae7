"""The lab enforces what the corpus's reference says, on a sample of its cases: namespaces x, y,
z with pods a, b, c (serving TCP and UDP 80 and 81 under their `serve-*` names) in east, each
case's policies applied through the lab's API, every ordered pair probed with the engine (TCP
and UDP on 80 and 81; SCTP has no probe and no kernel module here) and compared with the
reference. The policies the API server refuses are refused by the lab's."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from netconform.cluster import ClusterClient
from netconform.outcomes import ALLOW, TIMEOUT, Endpoint, Outcome
from netconform.probes import Probe
from netconform.scenario import Scenario, measure
from netconform.topology import Topology, load_topology
from netconform.vantage import PodVantage
from netconform.waits import wait_until
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.lab.apiserver_kit import api_client
from tests.lab.fields import model, name_of, node_name, pod_ip, pod_status
from tests.unit.policy_corpus import (
    NAMESPACES,
    POD_NAMES,
    REFUSED,
    Case,
    CorpusPod,
    World,
    generate,
    reference_allowed,
)

CLUSTER = "east"
PROBES = (Probe("tcp", 80), Probe("tcp", 81), Probe("udp", 80), Probe("udp", 81))
APPLY = 10.0
"""Seconds for a policy change to be enforced (the controller debounces 0.05 s; a round of
probes with drops takes about 2 s)."""
SAMPLE = 8
"""Cases drawn at random (seeded) beside the chosen ones."""


def chosen(case: Case) -> bool:
    """The forms where a lenient reading goes wrong, and one case of each construct."""
    names = {
        "policyTypes empty, ingress absent, egress absent",
        "policyTypes empty, ingress a rule, egress a rule",
        "policyTypes absent, ingress absent, egress a rule",
        "policyTypes absent, ingress empty, egress empty",
        "policyTypes Egress, ingress allow-all, egress empty",
        "ingress: ipblock with except",
        "egress: ipblock with except",
        "ingress: nil pods + empty ns",
        "egress: empty pods + nil ns",
        "ingress, 2-peer: pods by label + ns by label, ipblock with except",
        "union: all four",
        "target pod selector absent",
    }
    return case.name in names


def tagged(cases: list[Case], *tags: str) -> Case:
    return next(c for c in cases if set(tags) <= c.tags)


@dataclass
class Lab:
    net: client.NetworkingV1Api
    world: World
    endpoints: dict[str, Endpoint]
    """Corpus pod key (`x/a`) -> its endpoint."""
    scenario: Scenario


@pytest.fixture(scope="module")
def corpus_lab(lab: LabPaths) -> Iterator[Lab]:
    topology = load_topology(lab.topology)
    api = api_client(lab.kubeconfig, f"lab-{CLUSTER}")
    core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
    tag = uuid.uuid4().hex[:6]
    real = {n: f"pc-{tag}-{n}" for n in NAMESPACES}
    for logical, name in real.items():
        namespace = {"metadata": {"name": name, "labels": {"ns": logical}}}
        core.create_namespace(model(client.V1Namespace, namespace))
    try:
        yield _deploy(core, net, topology, real)
    finally:
        for name in real.values():
            core.delete_namespace(name)


def _deploy(
    core: client.CoreV1Api, net: client.NetworkingV1Api, topology: Topology, real: dict[str, str]
) -> Lab:
    ports = [
        {"name": name, "containerPort": number, "protocol": proto}
        for name, proto, number in CorpusPod("x", "a", "").ports
    ]
    container = {"name": "c", "image": "busybox", "ports": ports}
    for ns in real.values():
        for pod in POD_NAMES:
            body = {"metadata": {"name": pod, "labels": {"pod": pod}},
                    "spec": {"containers": [container]}}  # fmt: skip
            core.create_namespaced_pod(ns, model(client.V1Pod, body))

    def running() -> dict[str, client.V1Pod] | None:
        pods = {f"{logical}/{name_of(p)}": p for logical, ns in real.items()
                for p in core.list_namespaced_pod(ns).items
                if pod_status(p).phase == "Running" and pod_status(p).pod_ip}  # fmt: skip
        return pods if len(pods) == len(NAMESPACES) * len(POD_NAMES) else None

    pods = wait_until(running, timeout=30, name="corpus_pods_running")
    world = World(
        tuple(CorpusPod(k.split("/")[0], k.split("/")[1], pod_ip(p)) for k, p in
              sorted(pods.items())),
        real,
    )  # fmt: skip
    cluster = ClusterClient(topology.cluster(CLUSTER), topology.kubeconfig, topology.timeouts)
    endpoints = {k: Endpoint(CLUSTER, name_of(p), pod_ip(p), node_name(p))
                 for k, p in pods.items()}  # fmt: skip
    vantages = {e: PodVantage(cluster, real[k.split("/")[0]], e.name) for k, e in endpoints.items()}
    # a dropped probe waits 1 s (as tests/lab/test_network_policy_lab.py's nc -w 1)
    settings = dataclasses.replace(topology.probe, connect_timeout=1.0)
    scenario = Scenario(vantages, list(endpoints.values()), PROBES, settings=settings)
    return Lab(net, world, endpoints, scenario)


def reference_oracle(lab: Lab, case: Case) -> Callable[[Endpoint, Endpoint, Probe], Outcome]:
    pod_of = {e.ip: lab.world.pod(k) for k, e in lab.endpoints.items()}

    def expected(src: Endpoint, dst: Endpoint, probe: Probe) -> Outcome:
        ok = reference_allowed(lab.world, case.policies, pod_of[src.ip], pod_of[dst.ip],
                               probe.kind.upper(), probe.port)  # fmt: skip
        return ALLOW if ok else TIMEOUT

    return expected


def enforce(lab: Lab, case: Case) -> list[str]:
    """Apply the case, probe until the lab agrees with the reference (or APPLY ends), then
    once more in full: that round's disagreements. The full round comes at least one round
    after the change (the controller applies within 0.05 s), so the previous case's rules
    cannot pass it stale."""
    for policy in case.policies:
        namespace = policy["metadata"]["namespace"]
        lab.net.create_namespaced_network_policy(namespace, model(client.V1NetworkPolicy, policy))
    try:
        oracle = reference_oracle(lab, case)
        measure(lab.scenario, oracle, APPLY)
        final = measure(lab.scenario, oracle)
    finally:
        for policy in case.policies:
            meta = policy["metadata"]
            lab.net.delete_namespaced_network_policy(meta["name"], meta["namespace"])
    return [c.describe() for c in final.failed]


def sample(world: World) -> list[Case]:
    cases = generate(world)
    picked = [c for c in cases if chosen(c)]
    for tags in (("egress", "named-port", "UDP"), ("ingress", "end-port"),
                 ("egress", "end-port", "UDP"), ("ingress", "2-port")):  # fmt: skip
        picked.append(tagged(cases, *tags))
    rest = [c for c in cases if c not in picked]
    return picked + random.Random(15).sample(rest, SAMPLE)


def test_the_lab_enforces_a_sample_of_the_corpus(corpus_lab: Lab) -> None:
    """The lab's enforcement (controllers/network_policy.py, its own reading) agrees with the
    reference on every sampled case; the first case starts from no policy at all."""
    cases = sample(corpus_lab.world)
    assert len(cases) >= 20
    wrong = {c.name: enforce(corpus_lab, c) for c in cases}
    failed = {name: lines for name, lines in wrong.items() if lines}
    report = "\n".join(f"{n}: {len(ls)} wrong, e.g. {ls[:3]}" for n, ls in failed.items())
    assert not failed, (
        f"{len(failed)} of {len(cases)} cases not enforced as the reference:\n{report}"
    )


@pytest.mark.parametrize(("name", "spec"), REFUSED, ids=[r[0] for r in REFUSED])
def test_the_lab_refuses_what_the_api_server_refuses(
    corpus_lab: Lab, name: str, spec: dict[str, object]
) -> None:
    ns = corpus_lab.world.real["x"]
    with pytest.raises(ApiException) as info:
        refused = {"metadata": {"name": "refused"}, "spec": spec}
        corpus_lab.net.create_namespaced_network_policy(ns, model(client.V1NetworkPolicy, refused))
    assert info.value.status == 422, (name, info.value.body)


def test_a_lab_that_does_not_enforce_fails_the_case(corpus_lab: Lab, lab: LabPaths) -> None:
    """The comparison can fail: with east's enforcement off, `policyTypes: []` on x/a (an
    ingress deny by upstream's defaults) is reported as exactly the drops that did not happen."""
    case = next(c for c in generate(corpus_lab.world)
                if c.name == "policyTypes empty, ingress absent, egress absent")  # fmt: skip
    control.call(lab, "POST", "/fault", {"name": "policy-off", "args": [CLUSTER]})
    try:
        wrong = enforce(corpus_lab, case)
    finally:
        control.call(lab, "POST", "/heal", {})
    xa = corpus_lab.endpoints["x/a"].label
    assert wrong and all(f"-> {xa}:" in w and "expected TIMEOUT observed ALLOW" in w
                         for w in wrong), wrong[:5]  # fmt: skip
    into_xa = 8 * len(PROBES)  # every other pod into x/a, on every probe
    assert len(wrong) == into_xa, len(wrong)
