"""A run with one broken link against a healthy run, side by side on one lab: a cut peering
must not cost much more than the run itself (convergence and timeouts spent again per case
did: 98 s against 20 s). A benchmark, not a test: it prints figures and writes
benchmarks/results/broken_link.json.

    sudo .venv/bin/python benchmarks/bench_broken_link.py [--regions 3] [--runs 5]

It builds its own lab (prefix `ncx<pid>`, state in a temporary directory, always stopped),
then in every round runs `python -m pytest suites --topology <lab>` healthy and with the
lab's `cut-peering A B` fault (A and B: the first two regions), the order alternating from
round to round, each with a fresh run id; the fault is healed after its run. Wall time is the
process's; the diagnosis's first line is kept, to show the broken run said the right thing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netconform.topology import load_topology  # noqa: E402
from provisioning.lab import control  # noqa: E402
from provisioning.lab.control import LabPaths  # noqa: E402

PREFIX = f"ncx{os.getpid() % 100000}"


def one_run(paths: LabPaths, cut: tuple[str, str] | None) -> dict[str, Any]:
    if cut is not None:
        control.call(paths, "POST", "/fault", {"name": "cut-peering", "args": list(cut)})
    argv = [sys.executable, "-m", "pytest", "suites", "--topology", str(paths.topology), "-q",
            "-p", "no:cacheprovider"]  # fmt: skip
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    finally:
        if cut is not None:
            control.call(paths, "POST", "/heal", {})
    wall = time.perf_counter() - start
    section = proc.stdout.split(" netconform diagnosis ", 1)
    first = section[1].splitlines()[1][:160] if len(section) == 2 else ""
    return {"wall_s": wall, "exit": proc.returncode, "diagnosis": first}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    out: dict[str, Any] = {"loadavg_before": Path("/proc/loadavg").read_text().strip()}
    rounds: list[dict[str, Any]] = []
    with TemporaryDirectory(prefix="netconform-bench-") as tmp:
        paths = LabPaths(Path(tmp) / "lab")
        try:
            control.up(paths, regions=args.regions, prefix=PREFIX)
            names = [str(n) for n in load_topology(paths.topology).names]
            cut = (names[0], names[1])
            for i in range(args.runs):
                order = ("healthy", "cut") if i % 2 == 0 else ("cut", "healthy")
                runs = {m: one_run(paths, cut if m == "cut" else None) for m in order}
                ratio = runs["cut"]["wall_s"] / runs["healthy"]["wall_s"]
                rounds.append({"order": order, "ratio": ratio, **runs})
                print(
                    f"  round {i + 1} ({' then '.join(order)}): healthy "
                    f"{runs['healthy']['wall_s']:.1f} s (exit {runs['healthy']['exit']}), cut "
                    f"{runs['cut']['wall_s']:.1f} s (exit {runs['cut']['exit']}), cut/healthy "
                    f"{ratio:.2f}; diagnosis: {runs['cut']['diagnosis']}",
                    flush=True,
                )
        finally:
            control.down(paths, prefix=PREFIX)
    healthy = [r["healthy"]["wall_s"] for r in rounds]
    broken = [r["cut"]["wall_s"] for r in rounds]
    ratios = [r["ratio"] for r in rounds]
    summary = {
        "regions": args.regions,
        "runs": args.runs,
        "healthy_median_s": statistics.median(healthy),
        "healthy_range_s": (min(healthy), max(healthy)),
        "cut_median_s": statistics.median(broken),
        "cut_range_s": (min(broken), max(broken)),
        "ratio_median": statistics.median(ratios),
        "ratio_range": (min(ratios), max(ratios)),
    }
    out.update(summary=summary, rounds=rounds)
    out["loadavg_after"] = Path("/proc/loadavg").read_text().strip()
    print(
        f"{args.regions} regions, {args.runs} rounds: healthy {summary['healthy_median_s']:.1f} s"
        f" ({min(healthy):.1f}-{max(healthy):.1f}), cut {summary['cut_median_s']:.1f} s "
        f"({min(broken):.1f}-{max(broken):.1f}), cut/healthy per round median "
        f"{summary['ratio_median']:.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
    )
    path = REPO / "benchmarks" / "results" / "broken_link.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"load {out['loadavg_before']} -> {out['loadavg_after']}; written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
