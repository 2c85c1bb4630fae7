"""The lab a run builds must answer within the named `lab_up` timeout, not a constant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures import lab as fixtures_lab
from netconform.topology import Timeouts, Topology
from provisioning.lab import control


def test_choose_target_passes_the_lab_topologys_lab_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(control, "read_state", lambda paths: None)
    monkeypatch.setattr(control, "up", lambda paths, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(
        fixtures_lab,
        "lab_preview",
        lambda regions, lab_dir, layout: Topology(
            name="lab", clusters=(), timeouts=Timeouts(lab_up=7.5)
        ),
    )
    target = fixtures_lab.choose_target(
        None, (), tmp_path / ".lab", 3, "hyg", build=True, progress=lambda _m: None
    )
    assert target.built_lab is not None
    assert [c["timeout"] for c in calls] == [7.5]


def test_lab_defaults_are_the_named_timeout() -> None:
    assert control.up.__defaults__ is not None
    assert Timeouts().lab_up in control.up.__defaults__
