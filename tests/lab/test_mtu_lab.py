"""The path-MTU suite against the lab: healthy, and an MTU black hole from the lab's fault."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import run_suite

SUITE = "suites/mtu"


@pytest.fixture
def healed(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    control.call(lab, "POST", "/heal", {})


def test_mtu_black_hole_is_named_on_exactly_its_pairs(healed: LabPaths, tmp_path: Path) -> None:
    healthy = run_suite([SUITE, "--topology", str(healed.topology)], tmp_path)
    assert healthy.rc == 0 and set(healthy.outcomes.values()) == {"passed"}, healthy.output
    control.call(healed, "POST", "/fault", {"name": "mtu", "args": ["east", "west", "1400"]})
    run = run_suite([SUITE, "--topology", str(healed.topology)], tmp_path)
    assert run.failed() == {"east->west", "west->east"}, run.output[-3000:]
    message = run.messages["east->west"]
    assert "mtu expected MTU 1500 observed MTU 1400" in message
    assert "MTU black hole east->west: 1401-byte packets vanish, no fragmentation-needed" in message
