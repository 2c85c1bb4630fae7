"""--outcome, --baseline and --profile as a user meets them, on the cluster-less cloud suite
(no lab needed): the file is written and valid, a bad or foreign baseline ends the run before
anything runs, in one line, with its own code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reports import outcome

REPO = Path(__file__).resolve().parents[1]


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "suites/cloud",
        "--lab-dir",
        str(tmp_path / "no-lab"),
        *args,
    ]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)


def test_the_outcome_file_is_written_and_the_report_path_is_the_last_line(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    proc = run(tmp_path, "--outcome", str(path), "--profile", "smoke")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    document = outcome.read(path)
    assert document["profile"] == "smoke" and document["status"] == "passed"
    assert document["tests"] and all(t["suite"] == "cloud" for t in document["tests"])
    assert proc.stdout.rstrip().splitlines()[-1] == f"netconform: outcome file: {path}"


def test_a_missing_or_foreign_baseline_is_one_line_with_its_code(tmp_path: Path) -> None:
    missing = run(tmp_path, "--baseline", str(tmp_path / "nope.json"))
    assert missing.returncode == 13 and "cannot read outcome file" in missing.stderr
    nine = tmp_path / "nine.json"
    assert run(tmp_path, "--lab-regions", "9", "--outcome", str(nine)).returncode == 0
    foreign = run(tmp_path, "--baseline", str(nine))
    assert foreign.returncode == 12, foreign.stdout[-2000:] + foreign.stderr[-2000:]
    lines = [ln for ln in foreign.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "is of another topology" in lines[0] and "9 cluster(s)" in lines[0]
    other_profile = run(
        tmp_path, "--lab-regions", "9", "--baseline", str(nine), "--profile", "smoke"
    )
    assert other_profile.returncode == 12 and "ran profile full, this run smoke" in (
        other_profile.stderr
    )
    assert "Traceback" not in missing.stderr + foreign.stderr + other_profile.stderr
    same = run(tmp_path, "--lab-regions", "9", "--baseline", str(nine))
    assert same.returncode == 0 and "0 regression(s)" in same.stdout
