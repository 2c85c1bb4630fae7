"""Ending a process the lab daemon started, by its exact handle: it is given a grace period
(after whatever signal asked it to go), then SIGKILL, and is always reaped."""

from __future__ import annotations

import asyncio
import contextlib


async def reap(proc: asyncio.subprocess.Process, grace: float) -> None:
    """Until `proc` has ended: `grace` seconds to end on its own, then killed."""
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def end(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM to `proc` when it still runs, then `reap` it in the background."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    asyncio.get_running_loop().create_task(reap(proc, grace))
