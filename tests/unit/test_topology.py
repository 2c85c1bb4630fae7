"""Topology loading: good files load, bad ones name the file, the key and the expectation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from netconform.errors import TopologyError
from netconform.timeout_overrides import timeout_overrides, with_timeouts
from netconform.topology import (
    DEFAULT_REQUIRED_PORTS,
    load_topology,
)

GOOD = """
name: mrc
kubeconfig: kubeconfig
clusters:
  - {name: central, context: mrc-central, pod_cidrs: [10.124.0.0/16], cloud: aws,
     cloud_region: ca-central-1}
  - {name: east, context: mrc-east, pod_cidrs: [10.125.0.0/16]}
probe: {ping_count: 5, connect_timeout: 3}
timeouts: {pod_ready: 30}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return path


def test_good_file_loads_with_defaults(tmp_path: Path) -> None:
    topo = load_topology(write(tmp_path, GOOD))
    assert topo.names == ("central", "east")
    east = topo.cluster("east")
    assert (east.context, east.namespace, east.region) == ("mrc-east", "east", "east")
    assert east.dns_zone == "east.svc.cluster.local"
    assert topo.required_ports == DEFAULT_REQUIRED_PORTS
    assert topo.kubeconfig == tmp_path / "kubeconfig"
    assert topo.probe.ping_count == 5 and topo.probe.connect_timeout == 3.0
    assert topo.timeouts.pod_ready == 30.0 and topo.timeouts.api_ready == 30.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters: [", "line 1 malformed YAML"),
        ("name: x\n", "clusters: missing required key"),
        ("clusters: []\n", "clusters (line 1): expected a non-empty list of clusters"),
        (
            "clusters:\n  - {name: a}\n",
            "clusters[0].pod_cidrs: missing required key (clusters[0], line 2)",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: [10.300.0.0/16]}\n",
            "clusters[0].pod_cidrs[0] (line 2): expected an IPv4 CIDR like 10.0.0.0/16, "
            "got '10.300.0.0/16'",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: [10.0.0.0/8], cloud: ibm}\n",
            "clusters[0].cloud (line 2): expected one of lab, aws, gcp, azure, none, got 'ibm'",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\n  - {name: a, pod_cidrs: []}\n",
            "clusters[1].name (line 3): expected a value unique across clusters",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\nports: {required: [70000]}\n",
            "ports.required[0] (line 3): expected a TCP port 1-65535, got 70000",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\ntimeouts: {pod_redy: 3}\n",
            "unknown key 'pod_redy' in timeouts (line 3): did you mean 'pod_ready'?",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\nprobe: {ping_count: many}\n",
            "probe.ping_count (line 3): expected an integer, got 'many'",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\ningress: {canary_weight: 150}\n",
            "ingress.canary_weight (line 3): expected a number between 0 and 100, got 150",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\ningress: {canary_wieght: 5}\n",
            "unknown key 'canary_wieght' in ingress (line 3): did you mean 'canary_weight'?",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\ningress: {tls_expiry_days: -1}\n",
            "ingress.tls_expiry_days (line 3): expected a number between 0 and 3650, got -1",
        ),
        (
            "clusters:\n  - name: a\n    pod_cidrs: []\n  - name: b\n    contxt: mrc-east\n",
            "unknown key 'contxt' in clusters[1] (line 5): did you mean 'context'?",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\nimagez: {probe: x}\n",
            "unknown key 'imagez' at the top level (line 3): did you mean 'images'?",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\nprobe: {tcp_port: 80, tcp_port: 81}\n",
            "duplicate key 'tcp_port' in probe (line 3)",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\nzzz: 1\n",
            "unknown key 'zzz' at the top level (line 3): known keys: name, clusters,",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\nprobe: {ping_count: 1.0e+400}\n",
            "probe.ping_count (line 3): expected an integer, got inf",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: []}\ntimeouts: {exec: .nan}\n",
            "timeouts.exec (line 3): expected a number, got nan",
        ),
        (
            "clusters:\n  - {name: a, pod_cidrs: [], network: {id: v, cidr: []}}\n",
            "unknown key 'cidr' in clusters[0].network (line 2): did you mean 'cidrs'?",
        ),
    ],
)
def test_bad_file_names_file_key_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TopologyError) as err:
        load_topology(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_binary_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    path.write_bytes(b"\xff\xfe\x00clusters")
    with pytest.raises(TopologyError, match="not a text"):
        load_topology(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read topology file"):
        load_topology(tmp_path / "nope.yaml")


def test_unknown_cluster_lists_known_ones(tmp_path: Path) -> None:
    topo = load_topology(write(tmp_path, GOOD))
    with pytest.raises(TopologyError, match=r"no cluster named 'west'.*central, east"):
        topo.cluster("west")


def test_a_lab_topology_names_the_world_its_runner_probes_from(tmp_path: Path) -> None:
    lab = "clusters:\n  - {name: east, pod_cidrs: [10.101.0.0/16], cloud: lab}\n"
    with pytest.raises(TopologyError, match="runner_netns: expected the lab's world namespace"):
        load_topology(write(tmp_path, lab))
    topo = load_topology(write(tmp_path, lab + "runner_netns: ncl-world\n"))
    assert topo.runner_netns == "ncl-world"


def test_ingress_settings_load_and_round_trip(tmp_path: Path) -> None:
    text = GOOD + "ingress: {canary_weight: 20, tls_host: shop.example}\n"
    topo = load_topology(write(tmp_path, text))
    assert topo.ingress.canary_weight == 20 and topo.ingress.tls_host == "shop.example"
    assert topo.ingress.ingress_class == "nginx" and topo.ingress.tls_expiry_days == 14
    from netconform.topology import dump_topology, parse_topology

    again = parse_topology(dump_topology(topo))
    assert again.ingress == topo.ingress


def test_named_timeouts_overridden_on_the_command_line(tmp_path: Path) -> None:
    given = timeout_overrides(["exec=90", "converge=2.5"])
    assert given == {"exec": 90.0, "converge": 2.5}
    loaded = load_topology(write(tmp_path, GOOD))
    topology = with_timeouts(loaded, given)
    assert topology.timeouts == replace(loaded.timeouts, exec=90.0, converge=2.5)
    assert with_timeouts(topology, {}) is topology
