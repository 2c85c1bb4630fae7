"""After Ctrl-C the run's process ends even when a worker thread never returns: the watchdog
names the thread and exits with pytest's `interrupted` code once the grace period is over."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

STUCK = textwrap.dedent(
    """
    import threading
    from fixtures import checks
    checks.INTERRUPTED_EXIT_GRACE = 0.5
    threading.Thread(target=threading.Event().wait, name="measure_0").start()  # never returns
    checks.pytest_keyboard_interrupt()
    checks.pytest_unconfigure()
    """
)


def test_a_stuck_thread_cannot_hold_an_interrupted_run_open() -> None:
    done = subprocess.run(
        [sys.executable, "-c", STUCK], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "1 thread(s) still busy after 0.5s: measure_0" in done.stderr, done.stderr


def test_without_an_interrupt_the_watchdog_does_not_start() -> None:
    # a worker busy for 2 s: a watchdog (wrongly started) would end the process at 0.5 s
    quiet = STUCK.replace("checks.pytest_keyboard_interrupt()\n", "").replace(
        'target=threading.Event().wait, name="measure_0"',
        'target=threading.Event().wait, args=(2.0,), name="measure_0"',
    )
    done = subprocess.run(
        [sys.executable, "-c", quiet], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "interrupted" not in done.stderr, done.stderr
