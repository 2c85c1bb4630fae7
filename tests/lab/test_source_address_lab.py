"""Source address kept, against the real lab: green when healthy; with east's router
masquerading its pods' traffic to west (the `snat` fault), exactly east->west fails, naming
the address west's echoes saw, while TCP between the pods still connects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import run_suite

SUITE = "suites/source_address"
REGIONS = ("central", "east", "west")
ALL_PAIRS = {f"{a}->{b}" for a in REGIONS for b in REGIONS}


@pytest.fixture
def healed(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    control.call(lab, "POST", "/heal", {})


def test_healthy_lab_keeps_every_source_address(lab: LabPaths, tmp_path: Path) -> None:
    run = run_suite([SUITE, "--topology", str(lab.topology)], tmp_path)
    assert run.rc == 0, run.output[-3000:]
    assert set(run.outcomes) == ALL_PAIRS and set(run.outcomes.values()) == {"passed"}


def test_snat_fails_exactly_that_direction_naming_the_address_seen(
    healed: LabPaths, tmp_path: Path
) -> None:
    control.call(healed, "POST", "/fault", {"name": "snat", "args": ["east", "west"]})
    run = run_suite([SUITE, "--topology", str(healed.topology)], tmp_path)
    assert run.failed() == {"east->west"}, run.output[-3000:]
    assert {k for k, v in run.outcomes.items() if v == "passed"} == ALL_PAIRS - {"east->west"}
    message = run.messages["east->west"]
    lines = [ln for ln in message.splitlines() if " -> west/srcaddr-" in ln]
    assert lines and all("http expected CLIENT 10.101." in ln for ln in lines), message
    seen = {ln.split("observed CLIENT ")[1].split()[0] for ln in lines}
    assert len(seen) == 1 and not seen & {"?", ""} and not next(iter(seen)).startswith("10.101.")
    assert f"source NAT on the path (east->west seen as CLIENT {next(iter(seen))})" in message
    assert "ipBlock peers on pod CIDRs no longer match" in message
