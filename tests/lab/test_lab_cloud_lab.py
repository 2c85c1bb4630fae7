"""The lab as a cloud for the audits: `suites/cloud` and `netconform-cloud audit` read the lab's
routers (peerings, routing tables, FORWARD and the chains it jumps to, nat POSTROUTING) and
name what a fault broke, pair by pair: each of transit, cut-peering, firewall-close and snat
turns exactly its own cases red."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform.topology import load_topology
from provisioning import cli
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import run_suite

REGIONS = ("central", "east", "west")
PAIRS = {f"{a}->{b}" for a in REGIONS for b in REGIONS if a != b}
EAST_VPC = "10.101.0.0/16"


def audit(lab: LabPaths) -> tuple[int, dict[str, list[str]], str]:
    """`netconform-cloud audit` on the lab: rc, FAIL lines by `kind id`, the whole output."""
    out = io.StringIO()
    rc = cli.main(["audit", "--topology", str(lab.topology)], out)
    failures: dict[str, list[str]] = {}
    current = ""
    for line in out.getvalue().splitlines():
        if line.startswith("FAIL "):
            current = line[5:]
            failures[current] = []
        elif line.startswith("     ") and current:
            failures[current].append(line.strip())
    return rc, failures, out.getvalue()


@pytest.fixture
def faulted(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    control.call(lab, "POST", "/heal", {})


def test_healthy_lab_cloud_suite_audits_every_pair(lab: LabPaths, tmp_path: Path) -> None:
    run = run_suite(["suites/cloud", "--topology", str(lab.topology)], tmp_path)
    assert run.rc == 0, run.output[-3000:]
    ports = load_topology(lab.topology).required_ports
    # overlap and peering per unordered pair, routes per direction, ports per direction
    assert f"{3 + 3 + 6 + 6 * len(ports)} passed" in run.output, run.output[-2000:]
    assert set(run.outcomes.values()) == {"passed"}
    assert {k.removeprefix("lab:").rsplit(":", 1)[0] for k in run.outcomes} >= PAIRS
    rc, failures, out = audit(lab)
    assert rc == 0 and not failures, out
    assert f"audit: {3 + 3 + 6 + 6 * len(ports)} passed, 0 failed" in out


def test_transit_route_names_the_wrong_peering_for_exactly_its_pair(faulted: LabPaths) -> None:
    fault = {"name": "transit", "args": ["west", "east", "central"]}
    control.call(faulted, "POST", "/fault", fault)
    rc, failures, out = audit(faulted)
    assert rc == 1
    assert set(failures) == {"routes lab:west->east"}, out
    (message,) = failures["routes lab:west->east"]
    assert message.startswith("lab west->east: routing table of router west"), message
    assert f"routes {EAST_VPC} to central<->west, not to the pair's peering (east<->west)" in (
        message
    ), message


def test_cut_peering_fails_peering_and_routes_of_that_pair_only(faulted: LabPaths) -> None:
    control.call(faulted, "POST", "/fault", {"name": "cut-peering", "args": ["east", "west"]})
    rc, failures, out = audit(faulted)
    assert rc == 1
    assert set(failures) == {
        "peering lab:east->west",
        "routes lab:east->west",
        "routes lab:west->east",
    }, out
    peering = " ".join(failures["peering lab:east->west"])
    assert "peering east<->west (router east link p2) on east's side is down, not active" in (
        peering
    ), peering
    assert f"has a blackhole route to {EAST_VPC} via east<->west" in " ".join(
        failures["routes lab:west->east"]
    )


def test_a_forward_drop_closes_exactly_that_port_into_that_region(faulted: LabPaths) -> None:
    lab = faulted
    west = control.call(lab, "GET", "/netns?name=west")["netns"]
    rule = ["FORWARD", "-p", "tcp", "--dport", "9092", "-s", EAST_VPC, "-j", "DROP"]
    iptables = ["ip", "netns", "exec", west, "iptables"]
    subprocess.run([*iptables, "-I", *rule], check=True, timeout=30)
    try:
        rc, failures, out = audit(lab)
    finally:
        subprocess.run([*iptables, "-D", *rule], check=True, timeout=30)
    assert rc == 1
    assert set(failures) == {"port lab:east->west:9092"}, out
    (message,) = failures["port lab:east->west:9092"]
    assert message.startswith("lab east->west: FORWARD chain of router west denies (rule"), message
    assert f"tcp/9092 from {EAST_VPC} (peer east)" in message, message


def test_firewall_close_fault_closes_exactly_that_port_both_ways(faulted: LabPaths) -> None:
    """The fault writes into the firewall's own chain (`LAB-FIREWALL`): the audit reads it."""
    fault = {"name": "firewall-close", "args": ["east", "west", "9092"]}
    control.call(faulted, "POST", "/fault", fault)
    rc, failures, out = audit(faulted)
    assert rc == 1
    assert set(failures) == {"port lab:east->west:9092", "port lab:west->east:9092"}, out
    (message,) = failures["port lab:east->west:9092"]
    assert message.startswith("lab east->west: FORWARD chain of router west denies (rule "
                              "LAB-FIREWALL rule 1 "), message  # fmt: skip
    assert f"tcp/9092 from {EAST_VPC} (peer east)" in message, message


def test_snat_fault_fails_exactly_the_routes_of_its_direction(faulted: LabPaths) -> None:
    """east's router masquerades what its pods send to west: west no longer sees east's pod
    addresses, as if east's route to west went through a NAT gateway."""
    control.call(faulted, "POST", "/fault", {"name": "snat", "args": ["east", "west"]})
    rc, failures, out = audit(faulted)
    assert rc == 1
    assert set(failures) == {"routes lab:east->west"}, out
    (message,) = failures["routes lab:east->west"]
    assert (
        "routing table of router east routes 10.102.0.0/16 to source NAT by nat POSTROUTING "
        in (message)
    ), message
    assert "-j MASQUERADE), not to the pair's peering (east<->west)" in message, message
