"""Path MTU: between one probe pod per region and a probe pod on another node of every region,
the largest unfragmented (DF) packet that crosses is at least `probe.expected_mtu`; an MTU
black hole (a smaller link, fragmentation-needed dropped) is reported by name."""

from __future__ import annotations

from fixtures.checks import Verify
from fixtures.plugin import RegionPair
from netconform.check import Check, Environment
from netconform.pathmtu import df_probe, mtu_cause, search_mtu
from netconform.scenario import Scenario


def pod_pairs(env: Environment) -> Scenario:
    pods = env.probe_pods()
    sources = [p[0] for p in pods.values()]
    targets = [next(d for d in p if d.node != p[0].node) for p in pods.values()]
    probes = [df_probe(env.topology.probe.expected_mtu)]
    return env.scenario(sources, targets, probes)


CHECK = Check(
    "mtu", __doc__ or "", pod_pairs, refine=search_mtu, cause=mtu_cause, param="region_pair"
)


def test_mtu(region_pair: RegionPair, verify: Verify) -> None:
    verify(CHECK, region_pair)
