"""ClusterIP: every probe pod reaches its own cluster's echo Service by its ClusterIP, over
TCP and HTTP, through kube-proxy's rules on the pod's node (seed 002's Service check).
"""

from __future__ import annotations

from pathlib import Path

from fixtures.checks import Verify
from fixtures.plugin import RegionName
from netconform.check import Check, Environment, load_manifests
from netconform.probes import Probe
from netconform.profiles import first_source_per_cluster
from netconform.reachability import node_cause
from netconform.result import source_cluster
from netconform.scenario import Scenario, same_cluster

ECHO = load_manifests(Path(__file__).with_name("echo.yaml"))


def echo_services(env: Environment) -> Scenario:
    """The echo Service in every cluster; probes from every probe pod to its own cluster's."""
    env.apply_all(ECHO)  # labelled with the run id, removed at the end
    services = [env.service(cluster, "echo", ready=2) for cluster in env.clusters]
    probes = [Probe("tcp", 80), Probe("http", 80)]
    return env.scenario(env.sources(), services, probes, include=same_cluster)


CHECK = Check(
    "cluster-ip",
    __doc__ or "",
    echo_services,
    slice_by=source_cluster,
    param="region",
    cause=node_cause,
    converges=True,
    smoke=first_source_per_cluster,
)


def test_cluster_ip(region: RegionName, verify: Verify) -> None:
    verify(CHECK, region)
