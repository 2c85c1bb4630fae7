"""A lab for the project's own tests: its own prefix and state directory, built once."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioning.lab import control
from provisioning.lab.control import LabPaths

REPO = Path(__file__).resolve().parents[2]
TEST_PREFIX = "nct"


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
    control.up(paths, regions=3, prefix=TEST_PREFIX, progress=print)
    try:
        yield paths
    finally:
        control.down(paths, prefix=TEST_PREFIX)


@dataclass(frozen=True)
class SuiteRun:
    """One real pytest run of suites/ as a user would start it, read back from JUnit XML."""

    rc: int
    output: str
    outcomes: dict[str, str]
    """test id (the part in brackets) -> passed / failed / skipped / error."""
    messages: dict[str, str]

    def failed(self) -> set[str]:
        return {k for k, v in self.outcomes.items() if v == "failed"}


def run_suite(args: list[str], tmp_path: Path, timeout: float = 300) -> SuiteRun:
    junit = tmp_path / f"junit-{len(list(tmp_path.glob('junit-*')))}.xml"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}",
            "-q", *args]  # fmt: skip
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = case.get("name", "")
            key = name[name.find("[") + 1 : -1] if "[" in name else name
            outcome = "passed"
            for tag in ("failure", "error", "skipped"):
                node = case.find(tag)
                if node is not None:
                    outcome = {"failure": "failed"}.get(tag, tag)
                    messages[key] = (node.get("message") or "") + "\n" + (node.text or "")
            outcomes[key] = outcome
    return SuiteRun(proc.returncode, proc.stdout + proc.stderr, outcomes, messages)
