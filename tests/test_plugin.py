"""The plugin as a user meets it: ids, -k selection of pairs, header; no cluster needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def collect(*args: str) -> list[str]:
    """Collect only; a lab dir of its own, so a lab running in .lab does not change the ids."""
    args = ("--lab-dir", str(REPO / ".lab-collect-only"), *args)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "suites/pod_to_pod", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    return [ln.split("[", 1)[1].rstrip("]") for ln in proc.stdout.splitlines() if "::" in ln]


def test_ids_are_region_pairs_from_the_topology() -> None:
    ids = collect()
    assert ids == [f"{a}->{b}" for a in ("central", "east", "west")
                   for b in ("central", "east", "west")]  # fmt: skip


def test_k_selects_exactly_one_pair_even_among_similar_names() -> None:
    assert collect("--lab-regions", "9", "-k", "east->west") == ["east->west"]
    both = collect("--lab-regions", "9", "-k", "east->west or west->east")
    assert sorted(both) == ["east->west", "west->east"]
    assert "east->west" not in collect("--lab-regions", "9", "-k", "not east->west")
    assert len(collect("--lab-regions", "9", "-k", "northeast")) == 17
