"""Helpers for lab tests that drive one worker process by hand: a scratch network namespace
(only `lo`, removed by its exact name) and an asyncio poll with a named timeout."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def scratch_netns(name: str) -> Iterator[str]:
    """A network namespace `name` with `lo` up, deleted by that name afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace)")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, name: str) -> None:
    """Poll `check` until it holds, failing after `timeout` seconds (named)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{name}: not within {timeout:g} s")
        await asyncio.sleep(0.05)
