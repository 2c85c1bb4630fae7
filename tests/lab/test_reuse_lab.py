"""--reuse-workloads against the real lab: a reusing run leaves its workloads, the next adopts
them without writing a thing and still catches a fault; a changed object is re-applied; a run
that does not reuse stops; --remove-reused-workloads removes exactly the kept objects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from fixtures.plugin import MANAGED_BY
from netconform.cluster import ClusterClient
from netconform.reuse import MANIFEST, REUSE, identity
from netconform.topology import Topology, load_topology
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from reports import outcome
from tests.labrun import SuiteRun, run_suite

SUITES = ["suites/firewall", "suites/cluster_ip"]
REUSING = ["--profile", "smoke", "--reuse-workloads"]
KINDS = ("Pod", "Deployment", "Service")


def clients(topology: Topology) -> dict[str, ClusterClient]:
    return {
        str(c.name): ClusterClient(c, topology.kubeconfig, topology.timeouts)
        for c in topology.clusters
    }


def kept(topology: Topology) -> dict[str, tuple[str, str]]:
    """`cluster/Kind/name` -> (uid, resourceVersion) of every reused object of the topology."""
    selector = f"{REUSE}={identity(topology)}"
    found: dict[str, tuple[str, str]] = {}
    for name, client in clients(topology).items():
        namespace = topology.cluster(name).namespace
        for kind in KINDS:
            for obj in client.objects(kind, namespace, selector):
                meta = obj.metadata
                found[f"{name}/{kind}/{meta.name}"] = (meta.uid, meta.resource_version)
    return found


def remove(lab: LabPaths, tmp_path: Path) -> SuiteRun:
    return run_suite(
        ["suites", "--topology", str(lab.topology), "--remove-reused-workloads"], tmp_path
    )


@pytest.fixture(scope="module")
def reusing(lab: LabPaths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPaths]:
    """The lab; whatever this module's runs kept is removed at the end, and faults healed."""
    yield lab
    control.call(lab, "POST", "/heal", {})
    assert remove(lab, tmp_path_factory.mktemp("reuse-cleanup")).rc == 0


def run(lab: LabPaths, tmp_path: Path, *extra: str) -> SuiteRun:
    return run_suite([*SUITES, "--topology", str(lab.topology), *REUSING, *extra], tmp_path)


def test_a_second_run_adopts_without_redeploying_and_still_catches_a_fault(
    reusing: LabPaths, tmp_path: Path
) -> None:
    topology = load_topology(reusing.topology)
    first = run(reusing, tmp_path)
    assert first.rc == 0, first.output[-3000:]
    assert "netconform: reused workloads:" in first.output
    before = kept(topology)
    assert any("/Pod/fw-listener-" in k for k in before), before
    assert any("/Deployment/" in k for k in before), before
    fault = {"name": "firewall-close", "args": ["east", "west", "9092"]}
    control.call(reusing, "POST", "/fault", fault)
    try:
        second = run(reusing, tmp_path)
    finally:
        control.call(reusing, "POST", "/heal", {})
    assert second.failed() == {"east->west:9092", "west->east:9092"}, second.output[-3000:]
    line = next(ln for ln in second.output.splitlines() if "reused workloads:" in ln)
    assert "adopted" in line and "created" not in line and "re-applied" not in line, line
    assert kept(topology) == before  # the same objects, not one written to


def test_a_changed_object_is_reapplied_and_a_changed_pod_recreated(
    reusing: LabPaths, tmp_path: Path
) -> None:
    topology = load_topology(reusing.topology)
    assert run(reusing, tmp_path).rc == 0
    east = clients(topology)["east"]
    namespace = topology.cluster("east").namespace
    selector = f"{REUSE}={identity(topology)}"
    stale: dict[str, Any] = {"metadata": {"annotations": {MANIFEST: "0" * 64}}}  # an older one's
    deployment = east.objects("Deployment", namespace, selector)[0]
    name = deployment.metadata.name
    apps, core = k8s.AppsV1Api(east.api), k8s.CoreV1Api(east.api)
    apps.patch_namespaced_deployment(name, namespace, {**stale, "spec": {"replicas": 3}})
    probe = next(p for p in east.objects("Pod", namespace, selector)
                 if p.metadata.name.startswith("fw-listener-"))  # fmt: skip
    old_uid = probe.metadata.uid
    core.patch_namespaced_pod(probe.metadata.name, namespace, stale)
    again = run(reusing, tmp_path)
    assert again.rc == 0, again.output[-3000:]
    line = next(ln for ln in again.output.splitlines() if "reused workloads:" in ln)
    assert "1 re-applied" in line and "1 replaced" in line, line
    live = east.get("Deployment", name, namespace)
    assert live is not None
    assert live.spec.replicas == deployment.spec.replicas
    assert live.metadata.annotations[MANIFEST] != "0" * 64
    renewed = east.get("Pod", probe.metadata.name, namespace)
    assert renewed is not None
    assert renewed.metadata.uid != old_uid
    assert renewed.metadata.annotations[MANIFEST] != "0" * 64


def test_a_run_that_does_not_reuse_stops_and_the_cleanup_removes_exactly_the_kept(
    reusing: LabPaths, tmp_path: Path
) -> None:
    topology = load_topology(reusing.topology)
    assert run(reusing, tmp_path).rc == 0
    assert kept(topology)
    east = clients(topology)["east"]
    namespace = topology.cluster("east").namespace
    theirs = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"},
              "metadata": {"name": "users-own", "namespace": namespace,
                           "labels": {MANAGED_BY: "someone-else"}}}  # fmt: skip
    east.apply(theirs)
    try:
        plain = run_suite([*SUITES, "--topology", str(reusing.topology)], tmp_path)
        assert plain.rc == 2, plain.output[-3000:]
        assert "workloads kept by --reuse-workloads runs" in plain.output
        assert "--remove-reused-workloads" in plain.output
        assert kept(topology)  # the sweep took none of them
        cleanup = remove(reusing, tmp_path)
        assert cleanup.rc == 0, cleanup.output[-3000:]
        assert "removed" in cleanup.output and "reused workload object(s)" in cleanup.output
        assert kept(topology) == {}
        assert east.get("ConfigMap", "users-own", namespace) is not None
        assert not east.objects("Pod", namespace, f"{REUSE}")
    finally:
        east.delete("ConfigMap", "users-own", namespace)


def test_smoke_after_a_full_reusing_run_probes_from_its_own_pods_only(
    reusing: LabPaths, tmp_path: Path
) -> None:
    """Full keeps two probe pods per node, smoke uses one: the second stays kept, unused."""
    args = ["suites/cluster_ip", "--topology", str(reusing.topology), "--reuse-workloads"]
    full = run_suite([*args, "--profile", "full", "--outcome", str(tmp_path / "f.json")], tmp_path)
    assert full.rc == 0, full.output[-3000:]
    smoke = run_suite(
        [*args, "--profile", "smoke", "--outcome", str(tmp_path / "s.json")], tmp_path
    )
    assert smoke.rc == 0, smoke.output[-3000:]

    def sources(path: Path) -> set[str]:
        document = outcome.read(path)
        return {c["source"].split()[0] for check in document["checks"] for c in check["cases"]}

    assert any(s.endswith("-1") for s in sources(tmp_path / "f.json"))
    assert sources(tmp_path / "s.json") and all(
        s.endswith("-0") for s in sources(tmp_path / "s.json")
    )
    assert any(k.endswith("/Pod/probe-0-1") for k in kept(load_topology(reusing.topology)))
