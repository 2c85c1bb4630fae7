"""Pod-to-pod: ICMP and TCP between every pair of probe pods, same node to other region.

Seed 000 validates its network by pinging a west pod from an east pod; this does it for every
pod pair, judges loss per region pair as a rate against `probe.max_loss` (netconform.loss),
reports RTT per region pair, and names each pair that fails.
"""

from __future__ import annotations

from fixtures.checks import Verify
from fixtures.plugin import RegionPair
from netconform.check import Check, Environment
from netconform.loss import judge_loss, loss_rtt, pod_cause
from netconform.policyhint import read_selecting, with_policy_notes
from netconform.probes import Probe
from netconform.profiles import one_pair_per_region_pair
from netconform.scenario import Scenario


def probe_pods(env: Environment) -> Scenario:
    """Probe pods on every node; ping and a TCP connect from each to every other."""
    everyone = env.sources()
    probes = [Probe("icmp"), Probe("tcp", env.topology.probe.tcp_port)]
    spaces = {name: env.region_namespace(name) for name in env.clusters}
    context = with_policy_notes(read_selecting(env.clusters, spaces, everyone))
    return env.scenario(everyone, everyone, probes, context=context)


CHECK = Check(
    "pod-to-pod", __doc__ or "", probe_pods, tables=loss_rtt, refine=judge_loss, cause=pod_cause,
    smoke=one_pair_per_region_pair, param="region_pair",
    alone=True,  # its RTTs and loss are the run's timing figures
)  # fmt: skip


def test_pod_to_pod(region_pair: RegionPair, verify: Verify) -> None:
    verify(CHECK, region_pair)
