"""The policy oracle at the issue's scale: 100 policies x 1,000 pods x 5 ports (target < 1 s).

A benchmark, not a test: it prints figures (tests/unit/test_policy_oracle.py checks the same
set's answers without timing them).

    python benchmarks/bench_policy_oracle.py [--policies 100] [--pods 1000] [--runs 5]

Each run builds the PolicySet from the generated inputs (selector matches computed once) and
evaluates every (source pod, destination pod) pair on the five ports: 5,000,000 cases. It
prints the median of the runs for the build, the evaluation and both together, and the rate
of one-case-at-a-time `allowed()` calls for comparison.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netconform.policy.synthetic import PORTS, generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=100)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--single", type=int, default=100_000, help="allowed() calls to time")
    args = parser.parse_args()

    inputs = generate(n_policies=args.policies, n_pods=args.pods)
    cases = len(PORTS) * args.pods * args.pods
    builds, evals, allowed = [], [], 0
    for _ in range(args.runs):
        start = time.perf_counter()
        ps = inputs.policy_set()
        built = time.perf_counter()
        allowed = sum(r.bit_count() for port, proto in PORTS for r in ps.matrix(port, proto))
        done = time.perf_counter()
        builds.append(built - start)
        evals.append(done - built)

    rnd = random.Random(0)
    picks = [
        (rnd.randrange(args.pods), rnd.randrange(args.pods), *rnd.choice(PORTS))
        for _ in range(args.single)
    ]
    start = time.perf_counter()
    for s, d, port, proto in picks:
        ps.allowed(s, d, port, proto)
    single = time.perf_counter() - start

    build, evaluate = statistics.median(builds), statistics.median(evals)
    total = statistics.median(b + e for b, e in zip(builds, evals, strict=True))
    print(f"{args.policies} policies x {args.pods} pods x {len(PORTS)} ports = {cases:,} cases")
    print(f"allowed: {allowed:,} ({allowed / cases:.1%})")
    print(f"median of {args.runs} runs: build {build:.3f} s, evaluate {evaluate:.3f} s, ", end="")
    print(f"total {total:.3f} s (target < 1 s: {'met' if total < 1 else 'MISSED'})")
    print(f"one case at a time: {args.single:,} allowed() calls in {single:.3f} s ", end="")
    print(f"({single / args.single * 1e6:.1f} us per case)")


if __name__ == "__main__":
    main()
