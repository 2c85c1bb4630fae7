"""Source address kept: every probe pod asks an echo pod on every node of every region which
client address it saw; it must be the probe pod's own IP (flat pod networking, seed 000).

Source NAT on the path is reported with the address seen and what breaks with it (ipBlock
peers on pod CIDRs no longer match); where a cluster shows its CNI's SNAT settings (the
`aws-node` DaemonSet, seed 001), the cause names them.
"""

from __future__ import annotations

from pathlib import Path

from fixtures.checks import Verify
from fixtures.plugin import RegionPair
from netconform.check import Check, Environment, load_manifest
from netconform.cni import read_aws_node
from netconform.outcomes import Endpoint
from netconform.probes import Probe
from netconform.profiles import one_pair_per_region_pair
from netconform.reachability import relation
from netconform.scenario import Scenario
from netconform.srcaddr import CLIENT_IP_PATH, judge_source, source_cause, source_kept

ECHO = load_manifest(Path(__file__).with_name("echo-pod.yaml"))
ECHO_PORT = 8080


def echo_pods(env: Environment) -> Scenario:
    """An echo pod per node; an HTTP request from every probe pod to every echo pod."""
    image = env.topology.images.echo
    echoes = env.pods_on_every_node(ECHO, "srcaddr", image, ECHO_PORT, 1)
    destinations = [p for pods in echoes.values() for p in pods]
    notes = {name: read_aws_node(client) for name, client in env.clusters.items()}

    def context(src: Endpoint, dst: Endpoint) -> str:
        return "; ".join(filter(None, (relation(src, dst), notes.get(src.cluster, ""))))

    probe = Probe("http", ECHO_PORT, params=(("path", CLIENT_IP_PATH),))
    return env.scenario(env.sources(), destinations, [probe], context=context)


CHECK = Check(
    "source-address",
    __doc__ or "",
    echo_pods,
    oracle=source_kept,
    refine=judge_source,
    cause=source_cause,
    smoke=one_pair_per_region_pair,
    param="region_pair",
)


def test_source_address(region_pair: RegionPair, verify: Verify) -> None:
    verify(CHECK, region_pair)
