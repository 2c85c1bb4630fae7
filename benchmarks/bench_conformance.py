"""The full conformance run against a running lab, per suite: where the wall time goes.

A benchmark, not a test: it prints figures and writes benchmarks/results/conformance.json.

    python benchmarks/bench_conformance.py [--regions 3 9] [--runs 3] [--suites ingress canary tls]

For each region count it builds one lab (prefix `ncf<pid>`, state in a temporary directory, always
stopped at the end; lab up timed once), then runs `python -m pytest suites --topology ...`
--runs times, each with a fresh `--run-id` (so each deploys, measures and deletes its own
workloads, as a user's run does) and a JUnit XML report.

Per-suite wall time comes from the JUnit XML: pytest writes each test case's `time` as setup +
call + teardown (junit_duration_report=total), so a suite's sum includes its module and
session fixtures (deploying its pods) in the first case that needs them. A session fixture
shared by several suites is charged to the first suite that uses it. The remainder (process
start, collection, choosing the target, the final cleanup) is reported as `outside cases`.
Figures are medians over the runs; the total with lab up adds the single lab-up time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from provisioning.lab import control  # noqa: E402
from provisioning.lab.control import LabPaths  # noqa: E402

#: its own prefix per process: another benchmark's `down` sweeps `ncb-*`, never `ncf<pid>-*`
PREFIX = f"ncf{os.getpid() % 100000}"
TARGET_S = 30.0


def suite_of(classname: str) -> str:
    """`suites.services.test_services` -> `services`."""
    parts = classname.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "suites" else classname


def per_suite(junit: Path) -> tuple[dict[str, float], dict[str, int], list[str]]:
    """Seconds and case counts per suite, and the ids of failed cases."""
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    failed = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        suite = suite_of(case.get("classname", ""))
        seconds[suite] += float(case.get("time", "0"))
        counts[suite] += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
    return dict(seconds), dict(counts), failed


def one_run(
    topology: Path, junit: Path, run_id: str, suites: list[str] | None = None
) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        *([f"suites/{s}" for s in suites] if suites else ["suites"]),
        "--topology",
        str(topology),
        "-p",
        "no:cacheprovider",
        "-q",
        "--run-id",
        run_id,
        "--junitxml",
        str(junit),
    ]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if not junit.exists():
        raise SystemExit(
            f"conformance run did not report (exit {proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    seconds, counts, failed = per_suite(junit)
    return {
        "wall_s": wall,
        "exit": proc.returncode,
        "suites": seconds,
        "cases": counts,
        "failed": failed,
    }


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    suites = sorted({s for r in runs for s in r["suites"]})
    walls = [r["wall_s"] for r in runs]
    outside = [r["wall_s"] - sum(r["suites"].values()) for r in runs]
    return {
        "wall_s": statistics.median(walls),
        "wall_range": (min(walls), max(walls)),
        "outside_cases_s": statistics.median(outside),
        "suites": {s: statistics.median(r["suites"].get(s, 0.0) for r in runs) for s in suites},
        "cases": runs[0]["cases"],
    }


def bench(regions: int, runs: int, suites: list[str] | None = None) -> dict[str, Any]:
    with TemporaryDirectory(prefix="netconform-bench-") as tmp:
        paths = LabPaths(Path(tmp) / "lab")
        try:
            start = time.perf_counter()
            control.up(paths, regions=regions, prefix=PREFIX)
            lab_up = time.perf_counter() - start
            results = []
            for i in range(runs):
                junit = Path(tmp) / f"junit-{i}.xml"
                run_id = f"bench-conf-{regions}-{i}"
                results.append(one_run(paths.topology, junit, run_id, suites))
                print(
                    f"  {regions} regions run {i + 1}: {results[-1]['wall_s']:.1f} s, "
                    f"exit {results[-1]['exit']}, {len(results[-1]['failed'])} failed",
                    flush=True,
                )
                for failed in results[-1]["failed"][:5]:
                    print(f"    failed: {failed}", flush=True)
        finally:
            control.down(paths, prefix=PREFIX)
    summary = median_of(results)
    summary.update(lab_up_s=lab_up, total_with_lab_up_s=lab_up + summary["wall_s"], runs=results)
    return summary


def report(regions: int, s: dict[str, Any]) -> None:
    lo, hi = s["wall_range"]
    print(
        f"{regions} regions: lab up {s['lab_up_s']:.2f} s; run median {s['wall_s']:.1f} s "
        f"({lo:.1f}-{hi:.1f}); with lab up {s['total_with_lab_up_s']:.1f} s "
        f"(target {TARGET_S:g} s at 3 regions)"
    )
    for suite, sec in sorted(s["suites"].items(), key=lambda kv: -kv[1]):
        print(f"  {suite:<16} {sec:6.1f} s  ({s['cases'].get(suite, 0)} cases)")
    print(f"  {'outside cases':<16} {s['outside_cases_s']:6.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, nargs="+", default=[3, 9])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--suites",
        nargs="+",
        metavar="DIR",
        help="only these suites/ directories (default: every suite)",
    )
    args = parser.parse_args()
    figures: dict[str, Any] = {"loadavg_before": Path("/proc/loadavg").read_text().strip()}
    for regions in args.regions:
        figures[str(regions)] = bench(regions, args.runs, args.suites)
        report(regions, figures[str(regions)])
    figures["loadavg_after"] = Path("/proc/loadavg").read_text().strip()
    name = "conformance" + ("-" + "-".join(args.suites) if args.suites else "")
    out = REPO / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(f"load {figures['loadavg_before']} -> {figures['loadavg_after']}; written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
