"""Usage errors name the option the user typed: `pytest suites --lab-regions 0` is about
`--lab-regions` (a pytest usage error, exit 4), never the lab's own `--regions` (exit 8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
USAGE_ERROR = 4


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--lab-regions", "0"], "ERROR: --lab-regions must be between 1 and 50, got 0"),
        (["--lab-regions", "51"], "ERROR: --lab-regions must be between 1 and 50, got 51"),
        (["--lab-prefix", "A-b"], "ERROR: --lab-prefix: lab prefix 'A-b': expected 1-8"),
    ],
)
def test_lab_options_are_named_as_typed(args: list[str], line: str) -> None:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "suites/pod_to_pod", *args]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == USAGE_ERROR, text
    assert "Traceback" not in text and "--regions " not in text, text
    assert len(text.strip().splitlines()) == 1, text
    assert text.strip().startswith(line), text


def test_lab_sync_period_out_of_range_is_a_usage_error() -> None:
    argv = [sys.executable, "-m", "provisioning.lab", "up", "--sync-period", "0"]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "argument --sync-period: must be between 0.5 and 3600 seconds, got 0" in proc.stderr
