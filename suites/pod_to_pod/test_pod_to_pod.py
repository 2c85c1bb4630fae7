"""Pod-to-pod: ICMP and TCP between every pair of probe pods, same node to other region.

Seed 000 validates its network by pinging a west pod from an east pod; this does it for every
pod pair, measures loss and RTT per region pair, and names each pair that fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.plugin import Once, RegionPair
from fixtures.reporting import attach_cases, attach_matrix
from fixtures.workloads import Workloads, load_manifest
from netconform.cluster import ClusterClient
from netconform.outcomes import failure_report
from netconform.reachability import Observation, likely_cause, measure, summarize
from netconform.topology import Topology
from netconform.vantage import PodVantage

PROBE_POD = load_manifest(Path(__file__).with_name("probe-pod.yaml"))


@pytest.fixture(scope="session")
def pod_observations(
    topology: Topology, clusters: dict[str, ClusterClient], workloads: Workloads, once: Once
) -> list[Observation]:
    """Measured once per run (xdist workers share it)."""
    return once("pod-to-pod", lambda: _measure(topology, clusters, workloads))


def _measure(
    topology: Topology, clusters: dict[str, ClusterClient], workloads: Workloads
) -> list[Observation]:
    """Probe pods on every node, then one batch per source pod, all at once."""
    settings = topology.probe
    pods = workloads.pods_on_every_node(
        PROBE_POD, "probe", topology.images.probe, settings.tcp_port, settings.pods_per_node
    )
    everyone = [pod for cluster_pods in pods.values() for pod in cluster_pods]
    vantages = {
        pod: PodVantage(clusters[pod.cluster], topology.cluster(pod.cluster).namespace, pod.name)
        for pod in everyone
    }
    observations = measure(vantages, everyone, settings)
    names = [str(n) for n in topology.names]
    attach_matrix([summarize(observations, a, b) for a in names for b in names])
    return observations


def test_pod_to_pod(region_pair: RegionPair, pod_observations: list[Observation]) -> None:
    cases = [
        o.case
        for o in pod_observations
        if (o.case.source.cluster, o.case.destination.cluster)
        == (region_pair.source, region_pair.destination)
    ]
    assert cases, f"{region_pair}: no probe pods to test"
    attach_cases(f"pod-to-pod {region_pair}", cases)
    failed = [c for c in cases if not c.passed]
    assert not failed, f"{region_pair}: " + failure_report(
        cases, likely_cause([o.case for o in pod_observations])
    )
