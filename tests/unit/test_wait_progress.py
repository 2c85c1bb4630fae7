"""Long waits can be watched (the terminal's progress lines), and stop being watched."""

from __future__ import annotations

import time

import pytest

from netconform import waits


def test_an_observer_hears_of_every_poll_of_a_long_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waits, "PROGRESS_AFTER", 0.0)
    heard: list[tuple[str, float, str]] = []
    stop = waits.watch_waits(
        lambda name, elapsed, timeout, state: heard.append((name, timeout, state))
    )
    deadline = time.monotonic() + 0.3
    try:
        waits.wait_until(
            lambda: time.monotonic() > deadline,
            timeout=5,
            name="converge",
            interval=0.05,
            describe=lambda: "east: 2 cases left",
        )
    finally:
        stop()
    assert len(heard) >= 2 and heard[0] == ("converge", 5, "east: 2 cases left")
    waits.wait_until(lambda: True, timeout=1, name="quiet")
    assert all(name == "converge" for name, _, _ in heard)  # stopped: the next wait is not heard
