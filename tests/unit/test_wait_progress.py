"""Long waits can be watched (the terminal's progress lines), and stop being watched; an
interrupted run stops them all."""

from __future__ import annotations

import time

import pytest

from netconform import waits
from netconform.errors import WaitStoppedError


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


def test_stopped_waits_give_up_at_their_next_poll() -> None:
    """Ctrl-C: a wait polling in a background thread raises at once, naming itself."""
    waits.stop_waits()
    try:
        with pytest.raises(WaitStoppedError, match="lb_address: stopped"):
            waits.wait_until(lambda: None, timeout=60, name="lb_address")
    finally:
        waits.resume_waits()
    assert waits.wait_until(lambda: 1, timeout=1, name="after") == 1
