"""Shared fixtures of the project's own tests: a lab with its own prefix, built once."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from provisioning.lab import control, network
from provisioning.lab.control import LabPaths

#: a lab per test process (xdist workers, concurrent runs on one host never share one)
TEST_PREFIX = f"nct{os.getpid() % 100000}"


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces)"
    return None


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPaths]:
    """A running 3-region lab, removed (and checked gone) at the end of the session."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    paths = LabPaths(tmp_path_factory.mktemp("lab"))
    # owned by this process: a test run killed outright (a timeout, Ctrl-C twice) takes its lab
    control.up(paths, regions=3, prefix=TEST_PREFIX, progress=print, owner_pid=os.getpid())
    try:
        yield paths
    finally:
        control.down(paths, prefix=TEST_PREFIX)
        left = network.list_netns(TEST_PREFIX)
        assert not left, f"lab down left namespaces behind: {left}"
