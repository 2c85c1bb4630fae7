"""Pod-to-pod: ICMP and TCP between every pair of probe pods, same node to other region.

Seed 000 validates its network by pinging a west pod from an east pod; this does it for every
pod pair, judges loss per region pair as a rate against `probe.max_loss` (netconform.loss),
reports RTT per region pair, and names each pair that fails.
"""

from __future__ import annotations

from fixtures.checks import Verify
from fixtures.plugin import RegionPair
from netconform.check import Check, Environment, Table
from netconform.loss import judge_loss, pod_cause
from netconform.outcomes import Endpoint
from netconform.policyhint import policy_note, read_selecting
from netconform.probes import Probe
from netconform.profiles import one_pair_per_region_pair
from netconform.reachability import LOSS_RTT_HEADER, loss_rtt_rows, relation
from netconform.result import Result
from netconform.scenario import Scenario
from netconform.topology import Topology


def probe_pods(env: Environment) -> Scenario:
    """Probe pods on every node; ping and a TCP connect from each to every other."""
    everyone = env.sources()
    probes = [Probe("icmp"), Probe("tcp", env.topology.probe.tcp_port)]
    spaces = {name: env.topology.cluster(name).namespace for name in env.clusters}
    selected = read_selecting(env.clusters, spaces, everyone)

    def context(src: Endpoint, dst: Endpoint) -> str:
        return "; ".join(filter(None, (relation(src, dst), policy_note(selected, src, dst))))

    return env.scenario(everyone, everyone, probes, context=context)


def loss_rtt(result: Result, topology: Topology) -> list[Table]:
    rows, bad = loss_rtt_rows(result.cases, [str(n) for n in topology.names])
    return [Table("pod-to-pod loss and RTT per region pair", LOSS_RTT_HEADER, rows, bad)]


CHECK = Check(
    "pod-to-pod",
    __doc__ or "",
    probe_pods,
    tables=loss_rtt,
    refine=judge_loss,
    cause=pod_cause,
    smoke=one_pair_per_region_pair,
    alone=True,  # its RTTs and loss are the run's timing figures
    param="region_pair",
)


def test_pod_to_pod(region_pair: RegionPair, verify: Verify) -> None:
    verify(CHECK, region_pair)
