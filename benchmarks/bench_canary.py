"""Requests the canary's sequential verdict uses against the equal-power fixed-sample test.

A benchmark, not a test: it prints figures and writes benchmarks/results/canary.json
(tests/unit/test_canary_stats.py holds the same rule to its error bounds without timing it).

    python benchmarks/bench_canary.py [--weights 5 20 50] [--tolerance PP] [--batches 50]
                                      [--runs 3] [--cap-factor 3]

For each weight and batch size it builds the plan (netconform/canary.py) and, by the exact
dynamic program, gives the distribution of the counted answers used at p = w (a correct
controller) and at p = w - d and w + d (the boundary): mean, p50 and p99, the mean as a share
of the exact equal-power fixed N, P(FAIL) at p = w and P(PASS) at the boundary (miss). It
times the dynamic program at p = w (DP s, median of --runs) and the exact scan for the fixed
N (N s). "(normal)" is the normal approximation of the fixed N, SEMANTICS.md's figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netconform.canary import (  # noqa: E402
    CAP_FACTOR,
    CanaryPlan,
    equal_power_size,
    normal_equal_power_size,
    percent,
)
from netconform.canary_oc import OperatingCharacteristics, operating_characteristics  # noqa: E402


def timed(runs: int, plan: CanaryPlan, p: float) -> tuple[OperatingCharacteristics, float]:
    walls, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = operating_characteristics(plan, p)
        walls.append(time.perf_counter() - start)
    assert result is not None
    return result, statistics.median(walls)


def requests(result: OperatingCharacteristics, fixed: int) -> dict[str, float]:
    return {
        "mean": result.mean_requests,
        "p50": result.quantile(0.5),
        "p99": result.quantile(0.99),
        "mean_over_fixed": result.mean_requests / fixed,
        "p_fail": result.p_fail,
        "p_pass": result.p_pass,
        "p_cap": result.p_cap,
    }


def bench(
    weight: float, tolerance: float | None, batch: int, runs: int, cap_factor: int
) -> dict[str, Any]:
    plan = CanaryPlan.build(weight, tolerance, batch=batch, cap_factor=cap_factor)
    start = time.perf_counter()
    fixed = equal_power_size(plan.weight, plan.tolerance)
    scan = time.perf_counter() - start
    at_w, wall = timed(runs, plan, weight)
    row: dict[str, Any] = {
        "weight": weight,
        "tolerance": plan.tolerance,
        "batch": batch,
        "fixed_n": fixed,
        "normal_fixed_n": normal_equal_power_size(plan.weight, plan.tolerance),
        "cap": plan.cap,
        "fixed_n_scan_s": scan,
        "dp_s": wall,
        "at_w": requests(at_w, fixed),
    }
    for name, p in (
        ("at_w_minus_d", weight - plan.tolerance),
        ("at_w_plus_d", weight + plan.tolerance),
    ):
        if 0.0 <= p <= 1.0:
            row[name] = requests(operating_characteristics(plan, p), fixed)
    return row


def show(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'w':>5} {'d':>5} {'batch':>5} {'fixed N':>7} {'(normal)':>8} {'cap':>6} | "
        f"{'p = w: mean':>11} {'p50':>5} {'p99':>5} {'/fixed':>6} {'P(FAIL)':>8} | "
        f"{'p = w-d: mean':>13} {'p99':>5} {'miss':>6} | {'p = w+d: mean':>13} {'p99':>5} "
        f"{'miss':>6} | {'DP s':>5} {'N s':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        at = r["at_w"]
        line = (
            f"{percent(r['weight']):>4}% {percent(r['tolerance']):>3}pp {r['batch']:>5} "
            f"{r['fixed_n']:>7} {r['normal_fixed_n']:>8} {r['cap']:>6} | "
            f"{at['mean']:>11.0f} {at['p50']:>5} {at['p99']:>5} {at['mean_over_fixed']:>6.1%} "
            f"{at['p_fail']:>8.5f} |"
        )
        for side in ("at_w_minus_d", "at_w_plus_d"):
            s = r.get(side)
            line += (
                f" {s['mean']:>13.0f} {s['p99']:>5} {s['p_pass']:>6.4f} |"
                if s
                else f" {'-':>13} {'-':>5} {'-':>6} |"
            )
        print(f"{line} {r['dp_s']:>5.2f} {r['fixed_n_scan_s']:>5.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[5, 20, 50], help="percent")
    parser.add_argument("--tolerance", type=float, help="pp (default: the plan's default d)")
    parser.add_argument("--batches", type=int, nargs="+", default=[50])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the DP at p = w")
    parser.add_argument("--cap-factor", type=int, default=CAP_FACTOR, help="cap / fixed N")
    args = parser.parse_args()

    tolerance = None if args.tolerance is None else args.tolerance / 100
    rows = [
        bench(w / 100, tolerance, batch, args.runs, args.cap_factor)
        for batch in args.batches
        for w in args.weights
    ]
    show(rows)
    out = REPO / "benchmarks" / "results" / "canary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    print(f"\nwritten: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
