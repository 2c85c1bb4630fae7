"""The firewall suite against the real lab: healthy, a port closed by the lab's fault, and the
closed port opened by hand in a router's own chain."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform.cluster import ClusterClient
from netconform.topology import load_topology
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import run_suite

SUITE = "suites/firewall"
RUN_ID = "selftest-firewall"
KEEP = ["--run-id", RUN_ID, "--keep-workloads"]
REGIONS = ("central", "east", "west")
PORTS = (22, 2181, 2888, 3888, 8081, 9092)
ALL = {f"{a}->{b}:{p}" for a in REGIONS for b in REGIONS if a != b for p in PORTS}


@pytest.fixture(scope="module")
def kept(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    topology = load_topology(lab.topology)
    for cluster in topology.clusters:
        client = ClusterClient(cluster, topology.kubeconfig, topology.timeouts)
        client.delete_labelled(cluster.namespace, f"netconform.io/run-id={RUN_ID}")


@pytest.fixture
def healed(kept: LabPaths) -> Iterator[LabPaths]:
    yield kept
    control.call(kept, "POST", "/heal", {})


def test_healthy_lab_opens_required_and_closes_declared_ports(
    kept: LabPaths, tmp_path: Path
) -> None:
    run = run_suite([SUITE, "--topology", str(kept.topology), *KEEP], tmp_path)
    assert run.rc == 0, run.output[-3000:]
    assert set(run.outcomes) == ALL
    assert set(run.outcomes.values()) == {"passed"}


def test_firewall_close_fails_exactly_that_port_between_the_pair(
    healed: LabPaths, tmp_path: Path
) -> None:
    fault = {"name": "firewall-close", "args": ["east", "west", "9092"]}
    control.call(healed, "POST", "/fault", fault)
    run = run_suite([SUITE, "--topology", str(healed.topology), *KEEP], tmp_path)
    assert run.failed() == {"east->west:9092", "west->east:9092"}, run.output[-3000:]
    assert {k for k, v in run.outcomes.items() if v == "passed"} == ALL - run.failed()
    message = run.messages["east->west:9092"]
    assert "4 case(s) failed" in message
    assert "east/fw-listener-0-0 (10.101." in message and "-> west/fw-listener-" in message
    assert ":9092 tcp expected ALLOW observed TIMEOUT" in message
    assert "required TCP port(s) not open: east->west:9092, west->east:9092" in message


def test_closed_port_opened_by_hand_is_reported(healed: LabPaths, tmp_path: Path) -> None:
    """Delete west's deny rule for SSH by hand (iptables in its router): east->west:22 opens."""
    router = f"{control.read_state(healed)['prefix']}-west-rtr"  # type: ignore[index]
    rule = ["-d", "10.102.0.0/16", "-i", "p+", "-p", "tcp", "-m", "tcp", "--dport", "22",
            "-j", "DROP"]  # fmt: skip
    iptables = ["ip", "netns", "exec", router, "iptables", "-w"]
    subprocess.run([*iptables, "-D", "LAB-FIREWALL", *rule], check=True)
    try:
        run = run_suite([SUITE, "--topology", str(healed.topology), *KEEP], tmp_path)
    finally:
        subprocess.run([*iptables, "-I", "LAB-FIREWALL", "2", *rule], check=True)
    assert run.failed() == {"central->west:22", "east->west:22"}, run.output[-3000:]
    message = run.messages["east->west:22"]
    assert ":22 tcp expected CLOSED (refused or dropped) observed ALLOW" in message
    assert "declared-closed port(s) connect: central->west:22, east->west:22" in message
