"""Two labs from two state directories (two clones) on one machine never touch each other:
distinct default prefixes, every namespace marked as its lab's, a taken prefix refused naming
its owner, and one lab's `down` leaves the other running and green."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform.errors import LabError
from provisioning.lab import control, network, ownership
from provisioning.lab.control import LabPaths
from tests.labrun import REPO, run_suite


@pytest.fixture(scope="module")
def two_labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabPaths, LabPaths]]:
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (network namespaces)")
    a = LabPaths(tmp_path_factory.mktemp("clone-a") / ".lab")
    b = LabPaths(tmp_path_factory.mktemp("clone-b") / ".lab")
    try:
        for paths in (a, b):  # each with its state dir's own default prefix
            control.up(paths, regions=2, progress=print, owner_pid=os.getpid())
        yield a, b
    finally:
        for paths in (a, b):
            control.down(paths)
            prefix = control.default_prefix(paths)
            assert not network.list_netns(prefix), f"{paths.root}'s lab left namespaces"


def lab_cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "provisioning.lab", "--state-dir", str(state_dir), *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def assert_suite_green(lab: LabPaths, tmp_path: Path) -> None:
    run = run_suite(["suites/pod_to_pod", "--topology", str(lab.topology)], tmp_path)
    assert run.rc == 0, run.output[-3000:]
    assert run.outcomes and set(run.outcomes.values()) == {"passed"}, run.outcomes


def test_two_clones_labs_are_apart_and_down_of_one_leaves_the_other(
    two_labs: tuple[LabPaths, LabPaths], tmp_path: Path
) -> None:
    a, b = two_labs
    state_a, state_b = control.read_state(a), control.read_state(b)
    assert state_a is not None and state_b is not None
    pa, pb = state_a["prefix"], state_b["prefix"]
    assert pa == control.default_prefix(a) and pb == control.default_prefix(b) and pa != pb
    made_a, made_b = network.list_netns(pa), network.list_netns(pb)
    assert made_a and made_b
    for paths, made in ((a, made_a), (b, made_b)):
        owner = ownership.owner_of_dir(paths.root)
        assert {n: ownership.owner_of(n) for n in made} == dict.fromkeys(made, owner)

    assert_suite_green(a, tmp_path)
    assert_suite_green(b, tmp_path)

    # a third clone asking for a's prefix is told whose it is and what to do
    c = LabPaths(tmp_path / "clone-c" / ".lab")
    with pytest.raises(LabError) as err:
        control.up(c, regions=2, prefix=pa)
    message = str(err.value)
    assert f"taken by the running lab of state dir {a.root.resolve()}" in message, message
    assert f"daemon pid {state_a['pid']}" in message and "--prefix" in message, message
    up = lab_cli(c.root, "up", "--regions", "2", "--prefix", pa)
    assert up.returncode == LabError.exit_code and "Traceback" not in up.stderr, up.stderr
    assert len(up.stderr.strip().splitlines()) == 1, up.stderr

    # ... and its `down` with that prefix removes nothing of a's, naming what it left alone
    down_c = lab_cli(c.root, "down", "--prefix", pa)
    assert down_c.returncode == 0, down_c.stderr
    assert "0 leftover namespace(s) swept" in down_c.stdout, down_c.stdout
    assert f"left alone, not this lab's: {len(made_a)} of the lab of state dir" in down_c.stdout
    assert str(a.root.resolve()) in down_c.stdout and "running" in down_c.stdout
    assert sorted(network.list_netns(pa)) == sorted(made_a)
    assert control.read_state(a) is not None

    # a's own down: a is gone, its files with it; b runs on, green
    down_a = lab_cli(a.root, "down")
    assert down_a.returncode == 0, down_a.stderr
    assert not network.list_netns(pa) and control.read_state(a) is None
    assert not a.kubeconfig.exists() and not a.topology.exists() and not a.state.exists()
    assert ownership.read_claim(pa) is None
    assert control.read_state(b) is not None
    infrastructure = {n for n in made_b if n.count("-") <= 2}  # world, routers, nodes
    assert infrastructure <= set(network.list_netns(pb))
    assert_suite_green(b, tmp_path)
