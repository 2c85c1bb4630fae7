"""The services suite against the real lab: healthy, then each Services fault (and one rule
typed by hand into a router) fails exactly the cases it breaks, naming them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform.cluster import ClusterClient
from netconform.topology import load_topology
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import SuiteRun, run_suite
from tests.tools import kubectl_binary

SUITE = "suites/services/test_services.py"
RUN_ID = "selftest-services"
REGIONS = {"central", "east", "west"}


@pytest.fixture(scope="module")
def kept(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    control.call(lab, "POST", "/heal", {})
    topology = load_topology(lab.topology)
    for cluster in topology.clusters:
        client = ClusterClient(cluster, topology.kubeconfig, topology.timeouts)
        client.delete_labelled(cluster.namespace, f"netconform.io/run-id={RUN_ID}")


def suite(lab: LabPaths, tmp_path: Path, which: str) -> SuiteRun:
    args = [SUITE, "--topology", str(lab.topology), "--run-id", RUN_ID, "--keep-workloads"]
    return run_suite([*args, "-k", which], tmp_path)


def failed_lines(run: SuiteRun, key: str) -> list[str]:
    """Failed case lines (JUnit carries the message twice: once is enough)."""
    lines = [ln.strip() for ln in run.messages[key].splitlines() if "expected" in ln]
    return list(dict.fromkeys(lines))


def fault(lab: LabPaths, name: str, *args: str) -> None:
    control.call(lab, "POST", "/fault", {"name": name, "args": list(args)})


def lb_ip(lab: LabPaths, cluster: str, name: str) -> str:
    topology = load_topology(lab.topology)
    client = ClusterClient(topology.cluster(cluster), topology.kubeconfig, topology.timeouts)
    (svc,) = [s for s in client.objects("Service", cluster) if s.metadata.name == name]
    return str(svc.status.load_balancer.ingress[0].ip)


def test_healthy_and_kubectl_shows_external_ips(kept: LabPaths, tmp_path: Path) -> None:
    for which in ("from_pods", "runner"):
        run = suite(kept, tmp_path, which)
        assert run.rc == 0, run.output[-3000:]
        assert run.outcomes == dict.fromkeys(REGIONS, "passed")
    out = subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(kept.kubeconfig), "--context", "lab-east",
         "get", "svc", "-A"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "EXTERNAL-IP" in out and "198.18.1." in out and "10.101.255." in out, out


def test_lb_down_fails_only_that_lb(kept: LabPaths, tmp_path: Path) -> None:
    address = lb_ip(kept, "east", "echo-lb")
    fault(kept, "lb-down", "east/east/echo-lb")
    try:
        pods, runner = suite(kept, tmp_path, "from_pods"), suite(kept, tmp_path, "runner")
    finally:
        control.call(kept, "POST", "/heal", {})
    assert pods.failed() == REGIONS, pods.output[-3000:]
    for region in REGIONS:
        lines = failed_lines(pods, region)
        assert lines and all(f"east/east/echo-lb:loadbalancer ({address}):80" in ln
                             for ln in lines), lines  # fmt: skip
        assert all("expected ALLOW observed TIMEOUT" in ln for ln in lines), lines
    assert runner.failed() == {"east"}, runner.output[-3000:]
    (line,) = failed_lines(runner, "east")
    assert f"runner -> east/east/echo-lb:loadbalancer ({address}):80 spread" in line
    assert "expected SPREAD over 2 pod(s) observed TIMEOUT" in line


def test_lb_stale_fails_outside_the_cluster(kept: LabPaths, tmp_path: Path) -> None:
    fault(kept, "lb-stale", "west/west/echo-lb")
    try:
        pods, runner = suite(kept, tmp_path, "from_pods"), suite(kept, tmp_path, "runner")
    finally:
        control.call(kept, "POST", "/heal", {})
    # in-cluster clients are short-circuited by kube-proxy's rules for the status address
    assert pods.failed() == {"central", "east"}, pods.output[-3000:]
    assert all("west/west/echo-lb:loadbalancer" in ln for ln in failed_lines(pods, "east"))
    assert runner.failed() == {"west"}, runner.output[-3000:]


def test_nodeport_off_fails_only_that_node(kept: LabPaths, tmp_path: Path) -> None:
    fault(kept, "nodeport-off", "east-node-0")
    try:
        pods, runner = suite(kept, tmp_path, "from_pods"), suite(kept, tmp_path, "runner")
    finally:
        control.call(kept, "POST", "/heal", {})
    assert pods.failed() == REGIONS, pods.output[-3000:]
    for region in REGIONS:
        lines = failed_lines(pods, region)
        assert lines and all("east/east/echo-nodeport:nodeport (10.101.0.10):3" in ln
                             for ln in lines), lines  # fmt: skip
    assert runner.rc == 0, runner.output[-3000:]


def test_ilb_dropped_by_hand_in_the_router(kept: LabPaths, tmp_path: Path) -> None:
    address = lb_ip(kept, "west", "echo-ilb")
    router = control.call(kept, "GET", "/netns?name=west")["netns"]
    rule = ["PREROUTING", "-d", f"{address}/32", "-j", "DROP"]
    base = ["ip", "netns", "exec", router, "iptables", "-t", "raw"]
    subprocess.run([*base, "-I", *rule], check=True)
    try:
        pods = suite(kept, tmp_path, "from_pods")
    finally:
        subprocess.run([*base, "-D", *rule], check=True)
    # the peers lose the internal LB; west's own pods reach it through kube-proxy
    assert pods.failed() == {"central", "east"}, pods.output[-3000:]
    for region in ("central", "east"):
        lines = failed_lines(pods, region)
        assert lines and all(f"west/west/echo-ilb:loadbalancer ({address})" in ln
                             for ln in lines), lines  # fmt: skip
