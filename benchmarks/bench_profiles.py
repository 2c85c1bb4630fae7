"""`--profile smoke` against `--profile full`, and smoke with `--reuse-workloads` (gating:
the workloads kept between runs), side by side, and what the report costs. A benchmark, not a
test: it prints figures and writes benchmarks/results/profiles.json.

    sudo .venv/bin/python benchmarks/bench_profiles.py [--regions 3] [--runs 5]

It builds two identical labs (prefixes `ncp<pid>` and `ncr<pid>`, state in a temporary
directory, always stopped): a run that does not reuse stops where reused workloads are
deployed, so the reusing runs get a lab of their own. On the first, every round runs
`python -m pytest suites --topology <lab> --profile P` for both profiles, each with a fresh run
id (each deploys, measures and deletes its own workloads, as a user's run does); on the second,
`--profile smoke --reuse-workloads`, after one such run (not counted) has deployed what the
others adopt. The order of the three rotates from round to round. Wall time is the process's;
session time is pytest's own (from the outcome file's first test start to its end is not
recorded, so the process wall time is the figure). Then one full run with the Allure results
written, and, in-process, the report's parts timed on them: the figures (matplotlib) and
`allure generate` (the single-file HTML).
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
from reports import figures, html, outcome  # noqa: E402

PREFIX = f"ncp{os.getpid() % 100000}"
REUSE_PREFIX = f"ncr{os.getpid() % 100000}"
REUSED = "smoke-reused"
ORDERS = (("full", "smoke", REUSED), ("smoke", REUSED, "full"), (REUSED, "full", "smoke"))


def one_run(topology: Path, profile: str, out: Path, extra: list[str]) -> dict[str, Any]:
    """One pytest process; `profile` REUSED is smoke with --reuse-workloads."""
    name = profile
    if profile == REUSED:
        profile, extra = "smoke", [*extra, "--reuse-workloads"]
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "suites",
        "--topology",
        str(topology),
        "-q",
        "-p",
        "no:cacheprovider",
        "--profile",
        profile,
        "--outcome",
        str(out),
        *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    document = outcome.read(out)
    cases = sum(len(c["cases"]) for c in document["checks"])
    failed = [t["id"] for t in document["tests"] if t["outcome"] in ("failed", "error")]
    reused = [ln for ln in proc.stdout.splitlines() if "reused workloads:" in ln]
    return {
        "profile": name,
        "reused": reused[0].split(": ", 2)[-1] if reused else "",
        "wall_s": wall,
        "exit": proc.returncode,
        "cases": cases,
        "tests": len(document["tests"]),
        "failed": failed,
        "load": document["runner"]["load_before"],
    }


def report_parts(topology: Path, tmp: Path) -> dict[str, float]:
    results, out = tmp / "allure-results", tmp / "html"
    run = one_run(topology, "full", tmp / "report.json", ["--alluredir", str(results)])
    document = outcome.read(tmp / "report.json")
    regions = [str(n) for n in load_topology(topology).names]
    start = time.perf_counter()
    figures.topology(document["checks"], regions)
    figures.loss_rtt(document["checks"], regions)
    for record in document["checks"]:
        figures.check_heatmap(record, regions)
        if "policy" in record["id"]:
            figures.truth_tables(record)
    drawn = time.perf_counter() - start
    start = time.perf_counter()
    line = html.generate(results, out, tmp / "history.jsonl")
    generated = time.perf_counter() - start
    print(f"  report: {line}", flush=True)
    return {
        "full_with_allure_results_s": run["wall_s"],
        "figures_s": drawn,
        "allure_generate_s": generated,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    figures_out: dict[str, Any] = {"loadavg_before": Path("/proc/loadavg").read_text().strip()}
    rounds: list[dict[str, Any]] = []
    with TemporaryDirectory(prefix="netconform-bench-") as tmp:
        paths, kept = LabPaths(Path(tmp) / "lab"), LabPaths(Path(tmp) / "reuse-lab")
        try:
            control.up(paths, regions=args.regions, prefix=PREFIX)
            control.up(kept, regions=args.regions, prefix=REUSE_PREFIX)
            first = one_run(kept.topology, REUSED, Path(tmp) / "reuse-first.json", [])
            figures_out["reuse_first_run"] = first
            print(f"  first reusing run (deploys): {first['wall_s']:.1f} s", flush=True)
            for i in range(args.runs):
                order = ORDERS[i % len(ORDERS)]
                runs = {
                    p: one_run(
                        (kept if p == REUSED else paths).topology,
                        p,
                        Path(tmp) / f"{p}-{i}.json",
                        [],
                    )
                    for p in order
                }
                ratio = runs["smoke"]["wall_s"] / runs["full"]["wall_s"]
                reused_ratio = runs[REUSED]["wall_s"] / runs["full"]["wall_s"]
                rounds.append(
                    {"order": order, "ratio": ratio, "reused_ratio": reused_ratio, **runs}
                )
                print(
                    f"  round {i + 1} ({' then '.join(order)}): "
                    f"full {runs['full']['wall_s']:.1f} s, "
                    f"smoke {runs['smoke']['wall_s']:.1f} s ({ratio:.2f}), smoke reused "
                    f"{runs[REUSED]['wall_s']:.1f} s ({reused_ratio:.2f}); failed "
                    + "+".join(str(len(runs[p]["failed"])) for p in ("full", "smoke", REUSED))
                    + f"; reused: {runs[REUSED]['reused']}",
                    flush=True,
                )
            parts = report_parts(paths.topology, Path(tmp))
        finally:
            try:
                control.down(kept, prefix=REUSE_PREFIX)
            finally:
                control.down(paths, prefix=PREFIX)
    full = [r["full"]["wall_s"] for r in rounds]
    smoke = [r["smoke"]["wall_s"] for r in rounds]
    ratios = [r["ratio"] for r in rounds]
    reused = [r[REUSED]["wall_s"] for r in rounds]
    reused_ratios = [r["reused_ratio"] for r in rounds]
    summary = {
        "regions": args.regions,
        "runs": args.runs,
        "full_median_s": statistics.median(full),
        "full_range_s": (min(full), max(full)),
        "smoke_median_s": statistics.median(smoke),
        "smoke_range_s": (min(smoke), max(smoke)),
        "ratio_median": statistics.median(ratios),
        "ratio_range": (min(ratios), max(ratios)),
        "smoke_reused_median_s": statistics.median(reused),
        "smoke_reused_range_s": (min(reused), max(reused)),
        "reused_ratio_median": statistics.median(reused_ratios),
        "reused_ratio_range": (min(reused_ratios), max(reused_ratios)),
        "cases": {"full": rounds[0]["full"]["cases"], "smoke": rounds[0]["smoke"]["cases"]},
        "report": parts,
    }
    figures_out.update(summary=summary, rounds=rounds)
    figures_out["loadavg_after"] = Path("/proc/loadavg").read_text().strip()
    print(
        f"{args.regions} regions, {args.runs} rounds: full {summary['full_median_s']:.1f} s "
        f"({min(full):.1f}-{max(full):.1f}), smoke {summary['smoke_median_s']:.1f} s "
        f"({min(smoke):.1f}-{max(smoke):.1f}), smoke/full per round median "
        f"{summary['ratio_median']:.2f} ({min(ratios):.2f}-{max(ratios):.2f}); smoke reused "
        f"{summary['smoke_reused_median_s']:.1f} s ({min(reused):.1f}-{max(reused):.1f}), "
        f"reused/full per round median {summary['reused_ratio_median']:.2f} "
        f"({min(reused_ratios):.2f}-{max(reused_ratios):.2f}); cases "
        f"{summary['cases']['smoke']} vs {summary['cases']['full']}; figures "
        f"{parts['figures_s']:.2f} s, allure generate {parts['allure_generate_s']:.2f} s"
    )
    out = REPO / "benchmarks" / "results" / "profiles.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures_out, indent=2))
    print(f"load {figures_out['loadavg_before']} -> {figures_out['loadavg_after']}; written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
