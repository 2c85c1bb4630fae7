"""Convergence cannot hide an unreachable endpoint: with one of east's echo pods cut off from
the pods of east-node-0 (an iptables rule typed into that node's namespace), the services
check's ClusterIP cases from that node's probe pods fail naming the missing pod, and no other
case does, in every one of 20 measurements in a row (kube-proxy picks an endpoint at random
per connection, so one request per case would pass on a lucky pick)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from fixtures.plugin import MANAGED_BY, RUN_ID
from fixtures.workloads import Workloads
from netconform.cluster import ClusterClient
from netconform.scenario import Scenario, measure
from netconform.topology import load_topology
from provisioning.lab import control
from provisioning.lab.control import LabPaths

RUN = "selftest-endpoints"
SUITE = Path(__file__).resolve().parents[2] / "suites" / "services" / "test_services.py"
ROUNDS = 20


def services_suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("services_suite_under_test", SUITE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def env(lab: LabPaths) -> Iterator[Workloads]:
    topology = load_topology(lab.topology)
    clients = {
        str(c.name): ClusterClient(c, topology.kubeconfig, topology.timeouts)
        for c in topology.clusters
    }
    yield Workloads(topology, clients, {MANAGED_BY: "netconform", RUN_ID: RUN})
    for cluster in topology.clusters:
        clients[str(cluster.name)].delete_labelled(cluster.namespace, f"{RUN_ID}={RUN}")


def cluster_ip_cases(env: Workloads) -> tuple[Scenario, object]:
    """The services check's scenario from every probe pod, its ClusterIP cases only."""
    suite = services_suite()
    scenario = suite.from_pods(env)
    include = scenario.include
    only = replace(
        scenario,
        include=lambda s, d: include(s, d) and d.kind == "service" and d.name.endswith("/echo"),
    )
    return only, scenario.expect


def test_an_endpoint_unreachable_from_one_node_fails_exactly_there_every_run(
    lab: LabPaths, env: Workloads
) -> None:
    scenario, expect = cluster_ip_cases(env)
    healthy = measure(scenario, expect)  # type: ignore[arg-type]
    assert healthy.cases and not healthy.failed, [c.describe() for c in healthy.failed]
    victim = next(p for p in env.ready_pods("east", "echo") if p.node == "east-node-1")
    sources = [p for p in env.probe_pods()["east"] if p.node == "east-node-0"]
    node = control.call(lab, "GET", "/netns?name=east-node-0")["netns"]
    subnet = ".".join(sources[0].ip.split(".")[:3]) + ".0/24"
    rule = ["FORWARD", "-s", subnet, "-d", f"{victim.ip}/32", "-j", "DROP"]
    iptables = ["ip", "netns", "exec", node, "iptables", "-w"]
    subprocess.run([*iptables, "-I", *rule], check=True)
    try:
        for n in range(ROUNDS):
            result = measure(scenario, expect)  # type: ignore[arg-type]
            failed = {c.source for c in result.failed}
            assert failed == set(sources), (n, [c.describe() for c in result.failed])
            for case in result.failed:
                assert victim.name in str(case.expected), case.describe()
                assert victim.name not in str(case.observed), case.describe()
    finally:
        subprocess.run([*iptables, "-D", *rule], check=True)
