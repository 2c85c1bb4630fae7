"""The conformance run on a region namespace that enforces Pod Security `restricted`: the
probe pods and the checks' workloads are deployed compliant, TCP (and the ClusterIP check)
runs and passes, and ICMP from that namespace is
reported not supported with the reason (ping needs NET_RAW, which restricted drops; the lab
really takes it away: ping fails to execute in such a pod)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from netconform.cluster import ClusterClient
from netconform.topology import load_topology
from provisioning.lab.control import LabPaths
from tests.labrun import run_suite
from tests.tools import kubectl_binary

SUITES = ("suites/pod_to_pod", "suites/cluster_ip")
RUN_ID = "selftest-pod-security"
REGIONS = ("central", "east", "west")
ENFORCE = "pod-security.kubernetes.io/enforce"


@pytest.fixture
def restricted_east(lab: LabPaths) -> Iterator[ClusterClient]:
    """The east region namespace labelled restricted (unlabelled and emptied afterwards)."""
    topology = load_topology(lab.topology)
    east = ClusterClient(topology.cluster("east"), topology.kubeconfig, topology.timeouts)
    core = client.CoreV1Api(east.api)
    core.patch_namespace("east", {"metadata": {"labels": {ENFORCE: "restricted"}}})
    yield east
    core.patch_namespace("east", {"metadata": {"labels": {ENFORCE: None}}})
    for cluster in topology.clusters:
        ClusterClient(cluster, topology.kubeconfig, topology.timeouts).delete_labelled(
            cluster.namespace, f"netconform.io/run-id={RUN_ID}"
        )


def test_restricted_namespace_runs_tcp_and_reports_icmp_not_supported(
    lab: LabPaths, restricted_east: ClusterClient, tmp_path: Path
) -> None:
    args = [*SUITES, "--topology", str(lab.topology), "--run-id", RUN_ID, "--keep-workloads"]
    run = run_suite(args, tmp_path)
    assert run.rc == 0, run.output[-3000:]
    assert set(run.outcomes) == {f"{a}->{b}" for a in REGIONS for b in REGIONS} | set(REGIONS)
    assert set(run.outcomes.values()) == {"passed"}, run.output[-3000:]
    assert "some cases not supported: east enforces restricted, ICMP needs NET_RAW" in run.output
    assert "cluster-ip       3 passed, 0 failed, 0 skipped" in run.output
    pods = restricted_east.objects("Pod", "east", f"netconform.io/run-id={RUN_ID}")
    assert pods and all(p.spec.security_context.run_as_non_root for p in pods)
    kubectl = [kubectl_binary(), "--kubeconfig", str(lab.kubeconfig), "--context", "lab-east"]
    name = pods[0].metadata.name
    ping = subprocess.run([*kubectl, "exec", "-n", "east", name, "--", "ping", "-c1", "-W1",
                           pods[-1].status.pod_ip], capture_output=True, text=True, timeout=30,
                          check=False)  # fmt: skip
    assert ping.returncode != 0 and "Operation not permitted" in ping.stderr, ping
    whoami = subprocess.run([*kubectl, "exec", "-n", "east", name, "--", "id", "-u"],
                            capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert whoami.stdout.strip() == "65534", whoami
