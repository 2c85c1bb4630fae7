"""Firewall: the topology's required TCP ports (ZooKeeper, Kafka, Schema Registry) open from
every region's pod subnet to every other's, its declared-closed ports refused or dropped, as
the security groups, VPC firewall rules and NSGs of seed 000 promise. One test per rule:
`east->west:9092`.
"""

from __future__ import annotations

from pathlib import Path

from fixtures.checks import Verify
from fixtures.plugin import RegionPort
from netconform import firewall as fw
from netconform.check import Check, Environment, flat, load_manifest
from netconform.profiles import one_pair_per_region_pair
from netconform.scenario import Scenario

LISTENER = load_manifest(Path(__file__).with_name("listener.yaml"))


def listeners(env: Environment) -> Scenario:
    """A listener on every node on all declared ports; each connects to every other region's."""
    required, closed = env.topology.required_ports, env.topology.closed_ports
    ports = sorted({*required, *closed})
    template, image = fw.listener(LISTENER, ports), env.topology.images.probe
    pods = flat(env.pods_on_every_node(template, "fw-listener", image, ports[0], 1))
    return env.scenario(pods, pods, fw.port_probes(required, closed), include=fw.other_region)


CHECK = Check(
    "firewall", __doc__ or "", listeners, oracle=fw.declared, slice_by=fw.region_port,
    param="region_port", cause=fw.firewall_cause, smoke=one_pair_per_region_pair,
)  # fmt: skip


def test_firewall(region_port: RegionPort, verify: Verify) -> None:
    verify(CHECK, region_port)
