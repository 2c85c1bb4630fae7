"""Soak: pod-to-pod stays green under CPU saturation, and 30% loss is always caught.

One lab of its own (prefix ncs, 3 regions). Phase `busy`: N full pod-to-pod runs in a row (a
pytest process each, fresh run id: deploy, probe, delete) while one bounded busy loop per core
saturates the machine; failures counted (target 0). Phase `loss`: the lab fault
`loss east west 30`, N runs, counting those whose only failures are east->west and west->east,
each caught as LOSS (target N of N). The busy loops end by themselves after `--busy-limit`
seconds and are killed by exact pid at the end. Prints JSON.

    python benchmarks/soak_pod_to_pod.py [--runs 20] [--phases busy loss]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_pod_to_pod import Lab  # noqa: E402
from provisioning.lab import control  # noqa: E402
from provisioning.lab.control import LabPaths  # noqa: E402
from tests.labrun import run_suite  # noqa: E402

PREFIX = "ncs"
SUITE = "suites/pod_to_pod"
LOSSY = {"east->west", "west->east"}
BUSY = (
    "import sys, time\nend = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end: pass"
)


@contextmanager
def busy_cores(limit: float) -> Iterator[list[int]]:
    """One busy loop per core, each ending by itself after `limit` s; killed by pid at exit."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY, str(limit)])
             for _ in range(os.cpu_count() or 1)]  # fmt: skip
    try:
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(5)


def one_run(lab: Lab, run_id: str, tmp: Path) -> dict[str, Any]:
    start = time.monotonic()
    args = [SUITE, "--topology", str(lab.paths.topology), "--run-id", run_id]
    run = run_suite(args, tmp, timeout=600)
    wall = time.monotonic() - start
    lab.delete(run_id)
    failed = sorted(run.failed() | {k for k, v in run.outcomes.items() if v == "error"})
    loss_caught = set(failed) == LOSSY and all(
        "observed LOSS" in run.messages[k] and "packet loss above budget" in run.messages[k]
        for k in LOSSY
    )
    starved = run.output.count("rtt starved of CPU")
    first = {k: run.messages[k].splitlines()[:4] for k in failed}
    return {"rc": run.rc, "wall_s": round(wall, 1), "failed": failed,
            "loss_caught": loss_caught, "starved_lines": starved, "first_lines": first}  # fmt: skip


def phase(lab: Lab, name: str, runs: int, tmp: Path) -> dict[str, Any]:
    results = []
    for i in range(runs):
        one = one_run(lab, f"soak-{name}-{i}", tmp)
        print(f"{name} {i + 1}/{runs}: {one['wall_s']} s failed={one['failed']}", file=sys.stderr)
        results.append(one)
    walls = [r["wall_s"] for r in results]
    return {
        "runs": runs,
        "failed_runs": sum(1 for r in results if r["failed"]),
        "loss_caught": sum(1 for r in results if r["loss_caught"]),
        "wall_s": {"min": min(walls), "median": statistics.median(walls), "max": max(walls)},
        "failures": [r for r in results if r["failed"]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--phases", nargs="+", default=["busy", "loss"], choices=["busy", "loss"])
    parser.add_argument("--busy-limit", type=float, default=3600.0)
    args = parser.parse_args()
    figures: dict[str, Any] = {"cores": os.cpu_count()}
    with TemporaryDirectory(prefix="netconform-soak-") as tmp:
        paths = LabPaths(Path(tmp) / "lab")
        control.up(paths, regions=3, prefix=PREFIX)
        try:
            lab = Lab(paths)
            if "busy" in args.phases:
                with busy_cores(args.busy_limit) as pids:
                    figures["busy_pids"] = pids
                    figures["busy"] = phase(lab, "busy", args.runs, Path(tmp))
            if "loss" in args.phases:
                control.call(paths, "POST", "/fault", {"name": "loss",
                                                       "args": ["east", "west", "30"]})  # fmt: skip
                try:
                    figures["loss"] = phase(lab, "loss", args.runs, Path(tmp))
                finally:
                    control.call(paths, "POST", "/heal", {})
        finally:
            control.down(paths, prefix=PREFIX)
    print(json.dumps(figures, indent=2))
    busy_ok = figures.get("busy", {}).get("failed_runs", 0) == 0
    loss_ok = figures.get("loss", {}).get("loss_caught", args.runs) == args.runs
    return 0 if busy_ok and loss_ok else 1


if __name__ == "__main__":
    sys.exit(main())
