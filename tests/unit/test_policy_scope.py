"""What generic network-policy mode judges (netconform/policyscope.py) and the topology key
that narrows it and lets probe pods into a user's namespace (`network_policy`)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from fixtures.workloads import Workloads
from netconform.errors import NetconformError, TopologyError
from netconform.policyscope import judged, tcp_ports
from netconform.topology import PolicySettings, dump_topology, parse_topology

CLUSTER = {"name": "east", "context": "lab-east", "pod_cidrs": ["10.101.0.0/16"]}


def pod(
    ports: list[tuple[int, str]], phase: str = "Running", ip: str = "10.1.0.1", **spec: Any
) -> client.V1Pod:
    container = client.V1Container(
        name="c", ports=[client.V1ContainerPort(container_port=n, protocol=p) for n, p in ports]
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="p", namespace="shop"),
        spec=client.V1PodSpec(containers=[container], **spec),
        status=client.V1PodStatus(phase=phase, pod_ip=ip),
    )


def test_probe_able_pods_declare_a_tcp_port_and_run_on_the_pod_network() -> None:
    assert tcp_ports(pod([(80, "TCP"), (53, "UDP"), (8080, "TCP")])) == (80, 8080)
    assert tcp_ports(pod([(53, "UDP")])) == ()  # nothing to connect to
    assert tcp_ports(pod([(80, "TCP")], phase="Pending")) == ()
    assert tcp_ports(pod([(80, "TCP")], ip="")) == ()
    assert tcp_ports(pod([(80, "TCP")], host_network=True)) == ()  # policies do not apply


def test_every_namespace_is_judged_unless_the_topology_names_some() -> None:
    every = PolicySettings()
    assert judged("shop", ["east"], every) and judged("kube-system", ["east"], every)
    assert not judged("east", ["east"], every)  # the region namespace: the probe pods' own
    assert not judged("stars", ["east"], every)  # a suite namespace: its own check judges it
    narrowed = PolicySettings(namespaces=("shop",))
    assert judged("shop", ["east"], narrowed) and not judged("payments", ["east"], narrowed)


def test_the_network_policy_key_parses_and_round_trips() -> None:
    doc = {"clusters": [CLUSTER], "network_policy": {"namespaces": ["shop"],
                                                     "probe_namespaces": ["shop"]}}  # fmt: skip
    topology = parse_topology(doc)
    assert topology.network_policy == PolicySettings(("shop",), ("shop",))
    assert topology.deploy_namespaces("east") == ("east", "shop")
    assert parse_topology(dump_topology(topology)).network_policy == topology.network_policy
    assert parse_topology({"clusters": [CLUSTER]}).deploy_namespaces("east") == ("east",)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"namespace": ["shop"]}, "unknown key 'namespace' in network_policy .*'namespaces'"),
        ({"namespaces": "shop"}, r"network_policy.namespaces \(line 1\): expected a list of str"),
        ([], r"network_policy \(line 1\): expected a mapping"),
    ],
)
def test_a_bad_network_policy_key_is_named(section: Any, message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        parse_topology({"clusters": [CLUSTER], "network_policy": section})


def test_probe_pods_go_only_where_the_topology_allows() -> None:
    topology = parse_topology({"clusters": [CLUSTER]})
    env = Workloads(topology, {}, {})
    with pytest.raises(NetconformError, match="does not allow probe pods in it"):
        env.probe_pods_in("shop")
