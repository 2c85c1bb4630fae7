"""The cluster-ip check against the real lab: healthy, then with kube-proxy's path to the
Service broken by hand on one node (an iptables rule typed into the node's namespace)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform.cluster import ClusterClient
from netconform.topology import load_topology
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import remove_run, run_suite

SUITE = "suites/cluster_ip"
RUN_ID = "selftest-cluster-ip"
KEEP = ["--run-id", RUN_ID, "--keep-workloads"]


@pytest.fixture(scope="module")
def echo_kept(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    remove_run(lab, RUN_ID)


def cluster_ip(lab: LabPaths, cluster: str) -> str:
    topology = load_topology(lab.topology)
    client = ClusterClient(topology.cluster(cluster), topology.kubeconfig, topology.timeouts)
    (svc,) = [s for s in client.objects("Service", cluster) if s.metadata.name == "echo"]
    return str(svc.spec.cluster_ip)


def iptables(netns: str, *rule: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "iptables", *rule], check=True)


def test_cluster_ip_fails_only_behind_the_broken_node(echo_kept: LabPaths, tmp_path: Path) -> None:
    healthy = run_suite([SUITE, "--topology", str(echo_kept.topology), *KEEP], tmp_path)
    assert healthy.rc == 0, healthy.output[-3000:]
    assert healthy.outcomes == {"central": "passed", "east": "passed", "west": "passed"}
    node = control.call(echo_kept, "GET", "/netns?name=east-node-0")["netns"]
    rule = ["PREROUTING", "-d", f"{cluster_ip(echo_kept, 'east')}/32", "-j", "DROP"]
    iptables(node, "-t", "raw", "-I", *rule)
    try:
        broken = run_suite([SUITE, "--topology", str(echo_kept.topology), *KEEP], tmp_path)
    finally:
        iptables(node, "-t", "raw", "-D", *rule)
    assert broken.failed() == {"east"}, broken.output[-3000:]
    assert broken.outcomes["central"] == broken.outcomes["west"] == "passed"
    message = broken.messages["east"]
    failed = [ln for ln in message.splitlines() if "expected" in ln]
    assert failed and all(ln.strip().startswith("east/probe-0-") for ln in failed), message
    assert any("echo:service" in ln and ":80 tcp expected ALLOW observed TIMEOUT" in ln
               for ln in failed), message  # fmt: skip
    assert any(" http expected ALLOW observed TIMEOUT" in ln for ln in failed), message
    assert "every failed case starts on node east/east-node-0" in message
    assert "assert" not in message and "Case(" not in message
