"""Resolve-and-connect: from every probe pod, every other region's headless echo Service by its
name (`echo-pods.<ns>.svc.cluster.local`): curl resolves it through the pod's resolv.conf and
the stub domains, then the address answers over HTTP (pod IPs are flat-routed across regions).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fixtures.checks import Verify
from fixtures.plugin import RegionPair
from netconform.check import Check, Environment, load_manifests
from netconform.cluster import ClusterClient
from netconform.dnsreport import dns_cause as explain
from netconform.dnsreport import dns_pod_trouble
from netconform.outcomes import Case, Endpoint, service_name
from netconform.probes import Probe
from netconform.profiles import one_pair_per_region_pair
from netconform.scenario import Scenario

ECHO = load_manifests(Path(__file__).with_name("echo.yaml"))


CLIENTS: dict[str, ClusterClient] = {}
"""The clusters of the run, for the cause (their DNS pods' state once something failed)."""


def by_name(env: Environment) -> Scenario:
    CLIENTS.update(env.clusters)
    for cluster in env.clusters:
        for manifest in ECHO:
            env.apply(cluster, manifest)
    pods = [p for cluster_pods in env.probe_pods().values() for p in cluster_pods]
    names = []
    for cluster in env.clusters:
        env.service(cluster, "echo-pods", ready=2)
        ns = env.topology.cluster(cluster).namespace
        names.append(service_name(cluster, f"echo-pods.{ns}.svc.cluster.local"))

    def other_region(src: Endpoint, dst: Endpoint) -> bool:
        return src.cluster != dst.cluster

    vantages = {p: env.vantage(p) for p in pods}
    return Scenario(
        vantages, names, [Probe("http", 8080)], other_region, settings=env.topology.probe
    )


def dns_cause(cases: Sequence[Case]) -> str:
    """Which cluster's DNS fails for which zone, and DNS pods that are not ready (why)."""
    if all(c.passed for c in cases):
        return ""
    trouble = [t for name, client in CLIENTS.items() for t in dns_pod_trouble(name, client)]
    return explain(cases, trouble)


CHECK = Check(
    "dns-connect",
    __doc__ or "",
    by_name,
    converges=True,
    cause=dns_cause,
    smoke=one_pair_per_region_pair,
)


def test_dns_connect(peer_pair: RegionPair, verify: Verify) -> None:
    verify(CHECK, peer_pair)
