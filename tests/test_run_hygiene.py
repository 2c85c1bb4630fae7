"""Nothing left behind: no `.lab/` in the caller's cwd, no per-run temp dir after any run.

Real pytest processes, started from a directory outside the project, with TMPDIR pointed at a
private directory so that another run on this machine cannot disturb the count.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Ctrl-C once the session runs (after the plugin made its per-run directory), or while the
#: run tears down (before the netconform plugin's own pytest_unconfigure)
INTERRUPT_PLUGIN = """
import os
import pytest
from fixtures.plugin import STATE

WHERE = os.environ["INTERRUPT_IN"]

@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    shared = session.config.stash[STATE].shared_dir
    print(f"SHARED_DIR={shared} exists={shared is not None and shared.is_dir()}", flush=True)
    if WHERE == "runtestloop":
        raise KeyboardInterrupt

@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config):
    if WHERE == "unconfigure":
        raise KeyboardInterrupt
"""


def pytest_elsewhere(
    cwd: Path, tmpdir: Path, *args: str, pythonpath: Path | None = None, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir), **extra_env}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), str(REPO)]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def leftovers(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.glob("netconform-run-*"))


def dirs(tmp_path: Path) -> tuple[Path, Path]:
    cwd, tmpdir = tmp_path / "elsewhere", tmp_path / "tmp"
    cwd.mkdir()
    tmpdir.mkdir()
    return cwd, tmpdir


def test_collect_only_from_another_cwd_leaves_nothing(tmp_path: Path) -> None:
    cwd, tmpdir = dirs(tmp_path)
    proc = pytest_elsewhere(cwd, tmpdir, str(REPO / "suites"), "--collect-only")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "test_pod_to_pod[east->west]" in out
    # the lab it would attach to (or build) is the project's, not one in the cwd
    assert f"no lab running in {REPO / '.lab'}" in out, out
    assert list(cwd.iterdir()) == [], "the run created files in its cwd"
    assert leftovers(tmpdir) == [], out


def test_lab_dir_option_is_honoured(tmp_path: Path) -> None:
    cwd, tmpdir = dirs(tmp_path)
    lab_dir = tmp_path / "mylab"
    proc = pytest_elsewhere(
        cwd, tmpdir, str(REPO / "suites"), "--collect-only", "--lab-dir", str(lab_dir)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"no lab running in {lab_dir}" in proc.stdout
    assert not lab_dir.exists() and list(cwd.iterdir()) == []


@pytest.mark.parametrize("where", ["runtestloop", "unconfigure"])
def test_interrupted_run_removes_its_temp_dir(tmp_path: Path, where: str) -> None:
    cwd, tmpdir = dirs(tmp_path)
    (tmp_path / "interrupt_plugin.py").write_text(INTERRUPT_PLUGIN)
    proc = pytest_elsewhere(
        cwd,
        tmpdir,
        str(REPO / "suites" / "cloud"),
        "--topology",
        str(REPO / "examples" / "mrc-clouds.yaml"),
        "-p",
        "interrupt_plugin",
        "-s",
        pythonpath=tmp_path,
        INTERRUPT_IN=where,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out  # 2: interrupted; -2: Ctrl-C escaped the teardown
    assert f"SHARED_DIR={tmpdir}/netconform-run-" in out and "exists=True" in out, out
    assert leftovers(tmpdir) == [], out
    assert list(cwd.iterdir()) == [], "the run created files in its cwd"


def test_run_without_command_prints_usage_and_exits_2() -> None:
    for argv in ([], ["no-such-command"]):
        proc = subprocess.run(
            [str(REPO / "run"), *argv], capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "usage: ./run COMMAND" in proc.stderr
        assert "conformance" in proc.stderr and "selftest" in proc.stderr
        # clean text: no comment markers, no shell code
        assert not any(line.startswith("#") for line in proc.stderr.splitlines())
        assert "set -euo" not in proc.stderr and "case " not in proc.stderr
    unknown = subprocess.run(
        [str(REPO / "run"), "no-such-command"], capture_output=True, text=True, timeout=30
    )
    assert "unknown command: no-such-command" in unknown.stderr


def test_a_run_sweeps_the_temp_dirs_of_killed_runs_only(tmp_path: Path) -> None:
    """kill -9 leaves a run's dir behind; the next run removes it, never a live run's."""
    cwd, tmpdir = dirs(tmp_path)
    orphan = tmpdir / "netconform-run-killed"  # its owner lock is free: the run is gone
    orphan.mkdir()
    (orphan / ".owner.lock").touch()
    (orphan / "pod-to-pod.lock").touch()
    live = tmpdir / "netconform-run-live"
    live.mkdir()
    older = tmpdir / "netconform-run-older"  # no owner lock: not ours to judge
    older.mkdir()
    with (live / ".owner.lock").open("w") as owner:
        fcntl.flock(owner, fcntl.LOCK_EX)
        proc = pytest_elsewhere(
            cwd,
            tmpdir,
            str(REPO / "suites" / "cloud"),
            "--topology",
            str(REPO / "examples" / "mrc-clouds.yaml"),
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert leftovers(tmpdir) == ["netconform-run-live", "netconform-run-older"]
