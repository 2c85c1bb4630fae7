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
from netconform import srcaddr
from netconform.check import Check, Environment, flat, load_manifest
from netconform.cni import read_aws_node
from netconform.probes import Probe
from netconform.profiles import one_pair_per_region_pair
from netconform.scenario import Scenario

ECHO = load_manifest(Path(__file__).with_name("echo-pod.yaml"))
PORT = 8080


def echo_pods(env: Environment) -> Scenario:
    """An echo pod per node; an HTTP request from every probe pod to every echo pod."""
    echoes = flat(env.pods_on_every_node(ECHO, "srcaddr", env.topology.images.echo, PORT, 1))
    notes = {name: read_aws_node(client) for name, client in env.clusters.items()}
    probe = Probe("http", PORT, params=(("path", srcaddr.CLIENT_IP_PATH),))
    return env.scenario(env.sources(), echoes, [probe], context=srcaddr.with_cni_notes(notes))


CHECK = Check(
    "source-address", __doc__ or "", echo_pods, oracle=srcaddr.source_kept,
    refine=srcaddr.judge_source, cause=srcaddr.source_cause, smoke=one_pair_per_region_pair,
    param="region_pair",
)  # fmt: skip


def test_source_address(region_pair: RegionPair, verify: Verify) -> None:
    verify(CHECK, region_pair)
