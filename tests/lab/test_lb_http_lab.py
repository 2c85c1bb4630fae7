"""The lb-http suite (the README's worked example) against the real lab: healthy, every peer
pair passes; west's LoadBalancer down (`lb-down`) fails exactly the pairs into west, each
case naming west's LB and what it expected, the other pairs still passing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.workloads import Workloads
from netconform.cluster import ClusterClient
from netconform.topology import load_topology
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import SuiteRun, run_suite

SUITE = "suites/lb_http"
RUN_ID = "selftest-lb-http"
PEERS = {f"{a}->{b}" for a in ("central", "east", "west") for b in ("central", "east", "west")}
PEERS -= {"central->central", "east->east", "west->west"}
SELECTED = {"app.kubernetes.io/name": "netconform-lb-echo"}
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"


@pytest.fixture(scope="module")
def kept(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    control.call(lab, "POST", "/heal", {})
    topology = load_topology(lab.topology)
    for cluster in topology.clusters:
        client = ClusterClient(cluster, topology.kubeconfig, topology.timeouts)
        client.delete_labelled(cluster.namespace, f"netconform.io/run-id={RUN_ID}")


def suite(lab: LabPaths, tmp_path: Path) -> SuiteRun:
    args = ["--topology", str(lab.topology), "--run-id", RUN_ID, "--keep-workloads"]
    return run_suite([SUITE, *args], tmp_path)


def test_healthy_every_peer_pair_passes(kept: LabPaths, tmp_path: Path) -> None:
    run = suite(kept, tmp_path)
    assert run.rc == 0 and run.outcomes == dict.fromkeys(PEERS, "passed"), run.output[-3000:]


def test_lb_down_fails_exactly_the_pairs_into_that_region(kept: LabPaths, tmp_path: Path) -> None:
    control.call(kept, "POST", "/fault", {"name": "lb-down", "args": ["west/west/lb-echo"]})
    try:
        run = suite(kept, tmp_path)
    finally:
        control.call(kept, "POST", "/heal", {})
    assert run.failed() == {"central->west", "east->west"}, run.output[-3000:]
    assert all(run.outcomes[p] == "passed" for p in PEERS - run.failed())
    for pair in run.failed():
        lines = [ln for ln in run.messages[pair].splitlines() if " expected " in ln]
        assert lines and all("-> west/west/lb-echo:loadbalancer (" in ln for ln in lines), lines
        assert all("http expected HTTP 200 from west/lb-echo observed" in ln for ln in lines)


def test_a_stray_pod_with_the_labels_is_not_the_deployments(kept: LabPaths, tmp_path: Path) -> None:
    """What the check expects behind west's LB: the Deployment's own pods, not a pod that
    only carries their labels (the Service's selector picks that one up too)."""
    assert suite(kept, tmp_path).rc == 0  # the run's lb-echo Deployments exist (kept)
    topology = load_topology(kept.topology)
    clients: dict[str, ClusterClient] = {
        c.name: ClusterClient(c, topology.kubeconfig, topology.timeouts) for c in topology.clusters
    }
    labels = {"app.kubernetes.io/managed-by": "netconform", "netconform.io/run-id": RUN_ID}
    env = Workloads(topology, dict(clients), labels)
    stray = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "lb-echo-stray", "labels": {**labels, **SELECTED}},
        "spec": {"containers": [{"name": "echo", "image": AGNHOST, "args": ["netexec"]}]},
    }
    env.apply("west", stray)
    clients["west"].wait_pods_ready("west", "app.kubernetes.io/name=netconform-lb-echo", 3)
    names = [p.name for p in env.ready_pods("west", "lb-echo")]
    assert len(names) == 2 and "lb-echo-stray" not in names, names
    assert all(n.startswith("lb-echo-") for n in names), names
