"""Pod-to-pod against link faults: loss judged as a rate per region pair, ICMP dropped while
TCP connects (both through the lab's faults), and loss injected by hand in a router."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import run_suite

SUITE = "suites/pod_to_pod"
REGIONS = ("central", "east", "west")
ALL_PAIRS = {f"{a}->{b}" for a in REGIONS for b in REGIONS}


@pytest.fixture
def healed(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    control.call(lab, "POST", "/heal", {})


def test_thirty_percent_loss_fails_exactly_that_pair_as_loss(
    healed: LabPaths, tmp_path: Path
) -> None:
    control.call(healed, "POST", "/fault", {"name": "loss", "args": ["east", "west", "30"]})
    run = run_suite([SUITE, "--topology", str(healed.topology)], tmp_path)
    assert run.failed() == {"east->west", "west->east"}, run.output[-3000:]
    assert {k for k, v in run.outcomes.items() if v == "passed"} == ALL_PAIRS - run.failed()
    message = run.messages["east->west"]
    assert "icmp expected ALLOW observed LOSS" in message
    assert "east/probe-" in message and "-> west/probe-" in message
    assert "likely cause: packet loss above budget: east->west loses " in message
    assert "budget 1.0%" in message


def test_icmp_dropped_while_tcp_connects_says_so(healed: LabPaths, tmp_path: Path) -> None:
    control.call(healed, "POST", "/fault", {"name": "icmp-drop", "args": ["central", "west"]})
    run = run_suite([SUITE, "--topology", str(healed.topology)], tmp_path)
    assert run.failed() == {"central->west", "west->central"}, run.output[-3000:]
    message = run.messages["central->west"]
    assert "icmp expected ALLOW observed TIMEOUT" in message
    assert "tcp expected" not in message
    assert "TCP connects but ICMP is dropped (central<->west)" in message


def test_one_ping_lost_by_hand_does_not_fail_the_run(lab: LabPaths, tmp_path: Path) -> None:
    """A router drops the first echo request it forwards east->west (iptables by hand)."""
    router = f"{control.read_state(lab)['prefix']}-east-rtr"  # type: ignore[index]
    rule = ["-d", "10.102.0.0/16", "-p", "icmp", "--icmp-type", "echo-request",
            "-m", "limit", "--limit", "1/hour", "--limit-burst", "1", "-j", "DROP"]  # fmt: skip
    iptables = ["ip", "netns", "exec", router, "iptables", "-w"]
    subprocess.run([*iptables, "-I", "FORWARD", "1", *rule], check=True)
    try:
        run = run_suite([SUITE, "--topology", str(lab.topology)], tmp_path)
        counters = subprocess.run([*iptables, "-L", "FORWARD", "1", "-v", "-x", "-n"],
                                  capture_output=True, text=True, check=True).stdout  # fmt: skip
    finally:
        subprocess.run([*iptables, "-D", "FORWARD", *rule], check=True)
    assert counters.split()[0] == "1", counters  # exactly one ping was dropped
    assert run.rc == 0, run.output[-3000:]
    assert set(run.outcomes.values()) == {"passed"}
