"""Resolve-and-connect: from every probe pod, every other region's headless echo Service by its
name (`echo-pods.<ns>.svc.cluster.local`): curl resolves it through the pod's resolv.conf and
the stub domains, then the address answers over HTTP (pod IPs are flat-routed across regions).
"""

from __future__ import annotations

from pathlib import Path

from fixtures.checks import Verify
from fixtures.plugin import RegionPair
from netconform.check import Check, Environment, load_manifests
from netconform.dnsreport import clusters_dns_cause
from netconform.outcomes import service_name
from netconform.probes import Probe
from netconform.profiles import one_pair_per_region_pair
from netconform.scenario import Scenario, other_cluster

ECHO = load_manifests(Path(__file__).with_name("echo.yaml"))


def by_name(env: Environment) -> Scenario:
    env.apply_all(ECHO)
    names = [service_name(c, f"echo-pods.{env.region_namespace(c)}.svc.cluster.local")
             for c in env.services("echo-pods", ready=2)]  # fmt: skip
    return env.scenario(
        env.sources(), names, [Probe("http", 8080)], include=other_cluster,
        explain=lambda cases: clusters_dns_cause(cases, env.clusters),
    )  # fmt: skip


CHECK = Check(
    "dns-connect", __doc__ or "", by_name, converges=True, param="peer_pair",
    smoke=one_pair_per_region_pair,
)  # fmt: skip


def test_dns_connect(peer_pair: RegionPair, verify: Verify) -> None:
    verify(CHECK, peer_pair)
