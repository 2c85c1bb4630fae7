"""Firewall: the topology's required TCP ports (ZooKeeper, Kafka, Schema Registry) open from
every region's pod subnet to every other's, its declared-closed ports refused or dropped, as
the security groups, VPC firewall rules and NSGs of seed 000 promise. One test per rule:
`east->west:9092`.
"""

from __future__ import annotations

import copy
from pathlib import Path

from fixtures.checks import Verify
from fixtures.plugin import RegionPort
from netconform.check import Check, Environment, load_manifest
from netconform.firewall import declared, firewall_cause, other_region, port_probes, region_port
from netconform.profiles import one_pair_per_region_pair
from netconform.scenario import Scenario

LISTENER = load_manifest(Path(__file__).with_name("listener.yaml"))


def listeners(env: Environment) -> Scenario:
    """A listener on every node on all declared ports; each connects to every other region's."""
    topology = env.topology
    ports = sorted({*topology.required_ports, *topology.closed_ports})
    template = copy.deepcopy(LISTENER)
    container = template["spec"]["containers"][0]
    container["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in ports]
    container["env"] = [{"name": "LISTEN_PORTS", "value": " ".join(map(str, ports))}]
    pods = env.pods_on_every_node(template, "fw-listener", topology.images.probe, ports[0], 1)
    everyone = [p for cluster_pods in pods.values() for p in cluster_pods]
    probes = port_probes(topology.required_ports, topology.closed_ports)
    return env.scenario(everyone, everyone, probes, include=other_region)


CHECK = Check(
    "firewall",
    __doc__ or "",
    listeners,
    oracle=declared,
    slice_by=region_port,
    param="region_port",
    cause=firewall_cause,
    smoke=one_pair_per_region_pair,
)


def test_firewall(region_port: RegionPort, verify: Verify) -> None:
    verify(CHECK, region_port)
