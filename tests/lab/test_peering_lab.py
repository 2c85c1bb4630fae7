"""Non-transitive peering in the real lab: a route through a third region breaks exactly the
pairs it carries, whether the lab's `transit` fault sets it or a person types it by hand."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform.errors import LabError
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import SuiteRun, remove_run, run_suite

SUITE = "suites/pod_to_pod"
RUN_ID = "selftest-peering"
KEEP = ["--run-id", RUN_ID, "--keep-workloads"]
REGIONS = ("central", "east", "west")
ALL_PAIRS = {f"{a}->{b}" for a in REGIONS for b in REGIONS}
EAST_WEST = {"east->west", "west->east"}
#: the VPCs as the README gives them: 10.(100+i).0.0/16 for central, east, west
CENTRAL_VPC, EAST_VPC = "10.100.0.0/16", "10.101.0.0/16"


@pytest.fixture(scope="module")
def probes_kept(lab: LabPaths) -> Iterator[LabPaths]:
    """The lab; the probe pods this module's runs share are removed at the end."""
    yield lab
    remove_run(lab, RUN_ID)


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def dropped_by(router: str) -> int:
    """Packets the peering filter's final rule (the non-transitive drop) has dropped."""
    rules = sh("ip", "netns", "exec", router, "iptables", "-L", "LAB-PEERING", "-n", "-v", "-x")
    last = rules.strip().splitlines()[-1].split()
    assert last[2] == "DROP", rules
    return int(last[0])


def assert_only_east_west_fail(run: SuiteRun) -> None:
    assert run.failed() == EAST_WEST, run.output[-3000:]
    assert {k for k, v in run.outcomes.items() if v == "passed"} == ALL_PAIRS - EAST_WEST
    for pair, (src, dst) in (("east->west", ("east", "west")), ("west->east", ("west", "east"))):
        message = run.messages[pair]
        assert "expected ALLOW observed TIMEOUT" in message, message
        assert f"{src}/probe-" in message and f"-> {dst}/probe-" in message, message


def test_healthy_lab_passes_every_pair(probes_kept: LabPaths, tmp_path: Path) -> None:
    run = run_suite([SUITE, "--topology", str(probes_kept.topology), *KEEP], tmp_path)
    assert run.rc == 0, run.output[-3000:]
    assert set(run.outcomes) == ALL_PAIRS
    assert set(run.outcomes.values()) == {"passed"}


def test_transit_fault_fails_exactly_the_pairs_it_carries(
    probes_kept: LabPaths, tmp_path: Path
) -> None:
    lab = probes_kept
    central = control.call(lab, "GET", "/netns?name=central")["netns"]
    before = dropped_by(central)
    fault = {"name": "transit", "args": ["east", "west", "central"]}
    try:
        applied = control.call(lab, "POST", "/fault", fault)
        assert applied == {"applied": "transit east west central"}
        assert control.call(lab, "GET", "/status")["faults"] == ["transit east west central"]
        run = run_suite([SUITE, "--topology", str(lab.topology), *KEEP], tmp_path)
    finally:
        healed = control.call(lab, "POST", "/heal", {})
    assert healed == {"healed": ["transit east west central"]}
    assert_only_east_west_fail(run)
    assert dropped_by(central) > before  # central dropped the transit, nothing else did
    again = run_suite([SUITE, "--topology", str(lab.topology), *KEEP], tmp_path)
    assert again.rc == 0 and set(again.outcomes.values()) == {"passed"}, again.output[-3000:]


def test_transit_fault_needs_three_regions(probes_kept: LabPaths) -> None:
    for args in (["east", "west", "east"], ["east", "west"], ["east", "mars", "central"]):
        with pytest.raises(LabError):
            control.call(probes_kept, "POST", "/fault", {"name": "transit", "args": args})
    assert control.call(probes_kept, "GET", "/status")["faults"] == []


def test_route_through_a_third_region_typed_by_hand_breaks_east_west(
    probes_kept: LabPaths, tmp_path: Path
) -> None:
    lab = probes_kept
    west = control.call(lab, "GET", "/netns?name=west")["netns"]
    # what a person reads off the west router: the direct route to east, the hop to central
    direct = sh("ip", "netns", "exec", west, "ip", "route", "show", EAST_VPC).split()
    to_central = sh("ip", "netns", "exec", west, "ip", "route", "show", CENTRAL_VPC).split()
    assert direct[1] == "via" and to_central[1] == "via", (direct, to_central)
    central_hop = to_central[2]  # central's address on the west-central peering link
    sh("ip", "netns", "exec", west, "ip", "route", "replace", EAST_VPC, "via", central_hop)
    try:
        run = run_suite([SUITE, "--topology", str(lab.topology), *KEEP], tmp_path)
    finally:
        sh("ip", "netns", "exec", west, "ip", "route", "replace", *direct)
    assert_only_east_west_fail(run)
    restored = sh("ip", "netns", "exec", west, "ip", "route", "show", EAST_VPC).split()
    assert restored == direct
