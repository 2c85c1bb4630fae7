"""Seed 003's layout against the real lab: c1 and c2 share 10.120.0.0/16, are not peered and
meet only in a shared network of internal LoadBalancers. Pod-to-pod between them is reported
not supported (once, with the reason), each cluster's pods reach the other's internal LB, and
a DROP typed by hand into the shared network fails exactly those ILB cases, naming the LB."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform.cluster import ClusterClient
from netconform.ingress import lb_address
from netconform.topology import load_topology
from provisioning.lab import control, network
from provisioning.lab.control import LabPaths
from tests.labrun import SuiteRun, remove_run, run_suite

PREFIX = f"nco{os.getpid() % 100000}"
RUN_ID = "selftest-overlap"
REASON = (
    "not supported: c1 and c2 overlap: 10.120.0.0/16; "
    "reached through their internal load balancers instead"
)


@pytest.fixture(scope="module")
def overlap_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPaths]:
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (network namespaces)")
    paths = LabPaths(tmp_path_factory.mktemp("overlap"))
    control.up(paths, prefix=PREFIX, layout="overlap", progress=print, owner_pid=os.getpid())
    try:
        yield paths
        remove_run(paths, RUN_ID)
    finally:
        control.down(paths, prefix=PREFIX)
        left = network.list_netns(PREFIX)
        assert not left, f"lab down left namespaces behind: {left}"


def suite(lab: LabPaths, tmp_path: Path, *args: str) -> SuiteRun:
    common = ["--topology", str(lab.topology), "--run-id", RUN_ID, "--keep-workloads", "-rs"]
    return run_suite([*args, *common], tmp_path)


def ilb_ip(lab: LabPaths, cluster: str) -> str:
    topology = load_topology(lab.topology)
    client = ClusterClient(topology.cluster(cluster), topology.kubeconfig, topology.timeouts)
    (svc,) = [s for s in client.objects("Service", cluster) if s.metadata.name == "echo-ilb"]
    return str(svc.status.load_balancer.ingress[0].ip)


def test_layout_is_seed_003(overlap_lab: LabPaths) -> None:
    topology = load_topology(overlap_lab.topology)
    assert [(c.name, c.pod_cidrs) for c in topology.clusters] == [
        ("c1", ("10.120.0.0/16",)),
        ("c2", ("10.120.0.0/16",)),
    ]
    routes = subprocess.run(
        ["ip", "-n", f"{PREFIX}-c1-rtr", "route"], capture_output=True, text=True, check=True
    ).stdout
    assert "10.210.200.0/24 via 10.210.200.1 dev shared" in routes, routes
    assert " dev p" not in routes, routes  # no peering link at all


def test_pod_to_pod_between_overlapping_clusters_not_supported(
    overlap_lab: LabPaths, tmp_path: Path
) -> None:
    run = suite(overlap_lab, tmp_path, "suites/pod_to_pod")
    assert run.rc == 0, run.output[-3000:]
    assert run.outcomes == {
        "c1->c1": "passed",
        "c2->c2": "passed",
        "c1->c2": "skipped",
        "c2->c1": "skipped",
    }, run.output[-3000:]
    assert REASON in run.messages["c1->c2"] and REASON in run.messages["c2->c1"]
    assert run.output.count(REASON) == 1, run.output[-3000:]  # said once: SKIPPED [2]


def test_services_reach_the_other_clusters_ilb(overlap_lab: LabPaths, tmp_path: Path) -> None:
    run = suite(overlap_lab, tmp_path, "suites/services/test_services.py")
    assert run.rc == 0, run.output[-3000:]
    # from_pods and from the runner, each per cluster (JUnit ids repeat across the two)
    assert run.outcomes == {"c1": "passed", "c2": "passed"}, run.output[-3000:]
    assert "4 passed" in run.output, run.output[-3000:]


def test_shared_network_dropped_fails_exactly_the_ilb_cases(
    overlap_lab: LabPaths, tmp_path: Path
) -> None:
    ilbs = {c: ilb_ip(overlap_lab, c) for c in ("c1", "c2")}
    rule = ["FORWARD", "-j", "DROP"]
    shared = ["ip", "netns", "exec", f"{PREFIX}-shared", "iptables", "-w"]
    subprocess.run([*shared, "-I", *rule], check=True)
    try:
        run = suite(overlap_lab, tmp_path, "suites/services/test_services.py", "-k", "from_pods")
    finally:
        subprocess.run([*shared, "-D", *rule], check=True)
    assert run.failed() == {"c1", "c2"}, run.output[-3000:]
    for src, other in (("c1", "c2"), ("c2", "c1")):
        lines = {ln.strip() for ln in run.messages[src].splitlines() if "expected" in ln}
        target = f"{other}/{other}/echo-ilb:loadbalancer ({ilbs[other]}):80"
        assert lines and all(target in ln for ln in lines), lines
        assert not any(f"({ilbs[src]})" in ln for ln in lines), lines  # its own ILB still fine


def ingress_ilb(lab: LabPaths, cluster: str) -> str:
    topology = load_topology(lab.topology)
    client = ClusterClient(topology.cluster(cluster), topology.kubeconfig, topology.timeouts)
    return lb_address(client, "ingress-nginx/ingress-nginx-controller-internal")


def test_seed_003_flow_through_the_other_clusters_ingress_ilb(
    overlap_lab: LabPaths, tmp_path: Path
) -> None:
    """A pod in c1 requests the routing host's /foo through c2's internal LB (and back):
    green with the gateways' source NAT, red with exactly the missing one named."""
    healthy = suite(overlap_lab, tmp_path, "suites/ingress", "-k", "internal")
    assert healthy.rc == 0, healthy.output[-3000:]
    assert healthy.outcomes == dict.fromkeys(("c1->c1", "c1->c2", "c2->c1", "c2->c2"), "passed")
    address = ingress_ilb(overlap_lab, "c2")
    control.call(overlap_lab, "POST", "/fault", {"name": "gateway-snat", "args": ["c1", "off"]})
    try:
        run = suite(overlap_lab, tmp_path, "suites/ingress", "-k", "internal")
    finally:
        control.call(overlap_lab, "POST", "/heal", {})
    assert run.failed() == {"c1->c2"}, run.output[-3000:]
    message = run.messages["c1->c2"]
    assert f"c2/echo.example/foo:ingress-internal ({address}):80" in message, message
    assert "expected HTTP 200 from c2/ing-foo observed TIMEOUT" in message, message
    assert (
        f"c1 and c2 overlap (10.120.0.0/16): c2's internal LoadBalancer {address} answers "
        "c2's own pods but not c1's; without source NAT at c1's gateway"
    ) in message
    again = suite(overlap_lab, tmp_path, "suites/ingress", "-k", "internal")
    assert again.rc == 0, again.output[-3000:]


def test_gateway_snat_removed_by_hand(overlap_lab: LabPaths, tmp_path: Path) -> None:
    """The MASQUERADE rule deleted from c2's router with iptables, as a user would: c2's
    requests through c1's internal LB fail, named the same way."""
    nat = ["ip", "netns", "exec", f"{PREFIX}-c2-rtr", "iptables", "-w", "-t", "nat"]
    rule = ["LAB-GATEWAY", "-o", "shared", "-j", "MASQUERADE"]  # the gateway's own chain
    subprocess.run([*nat, "-D", *rule], check=True)
    try:
        run = suite(overlap_lab, tmp_path, "suites/ingress", "-k", "internal")
    finally:
        subprocess.run([*nat, "-A", *rule], check=True)
    assert run.failed() == {"c2->c1"}, run.output[-3000:]
    assert "without source NAT at c2's gateway" in run.messages["c2->c1"]
