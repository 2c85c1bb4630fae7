"""Polling waits with a name and a timeout (tenacity underneath), never a bare sleep.

A long wait can be watched: `watch_waits(observer)` registers a function called on every
poll of every wait that has lasted `PROGRESS_AFTER` seconds (the terminal shows progress
with it; the core prints nothing itself)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_exponential

from netconform.errors import WaitStoppedError, WaitTimeoutError

T = TypeVar("T")

PROGRESS_AFTER = 2.0
"""Seconds a wait lasts before its observers hear of it."""
WaitObserver = Callable[[str, float, float, str], None]
"""(wait name, seconds elapsed, its timeout, what it waits on) -> None."""
_OBSERVERS: list[WaitObserver] = []
_STOPPING = threading.Event()


def stop_waits() -> None:
    """Make every wait, in every thread, give up at its next poll (a run interrupted with
    Ctrl-C: checks measured in background threads stop waiting instead of holding the
    process open until their timeouts)."""
    _STOPPING.set()


def resume_waits() -> None:
    """Undo `stop_waits` (a process that goes on after an interrupt, as tests do)."""
    _STOPPING.clear()


def watch_waits(observer: WaitObserver) -> Callable[[], None]:
    """Call `observer` on every poll of a long wait; returns the function that stops it."""
    _OBSERVERS.append(observer)
    return lambda: _OBSERVERS.remove(observer) if observer in _OBSERVERS else None


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    name: str,
    interval: float = 0.05,
    max_interval: float = 1.0,
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll `condition` until it returns something truthy, and return that.

    Raises WaitTimeoutError naming the wait (`pod_ready`), its timeout and, via `describe`,
    the state it was stuck in. Exceptions from `condition` propagate at once.
    """
    start = time.monotonic()

    def polled() -> T | None:
        if _STOPPING.is_set():
            raise WaitStoppedError(f"{name}: stopped, the run is being interrupted")
        elapsed = time.monotonic() - start
        if _OBSERVERS and elapsed >= PROGRESS_AFTER:
            state = describe() if describe is not None else ""
            for observer in list(_OBSERVERS):
                observer(name, elapsed, timeout, state)
        return condition()

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=interval, min=interval, max=max_interval),
        retry=retry_if_result(lambda result: not result),
        retry_error_callback=lambda state: None,
        reraise=True,
    )
    result: T | None = retrying(polled)
    if not result:
        detail = f": {describe()}" if describe is not None else ""
        raise WaitTimeoutError(f"{name}: not reached within {timeout:g}s{detail}")
    return result
