"""The network_policy stars suite's wall time vs a sequential `kubectl exec ... nc` loop over
the same matrix (every step: each stars pod to each other of its cluster, on its port).

One lab of its own (prefix ncp) with REGIONS regions (default 3). The suite runs as a user
runs it (one pytest process, fresh run id, deploy + 5 steps + delete), RUNS times; the loop
deploys the same pods once per run, applies each step's policies and runs one `kubectl exec`
per case, one after another. Medians of RUNS (default 3). Prints JSON.

    python benchmarks/bench_network_policy.py [REGIONS] [RUNS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_pod_to_pod import Lab, running_lab  # noqa: E402
from suites.network_policy.test_stars import STEPS, deploy, set_policies  # noqa: E402
from tests.tools import kubectl_binary  # noqa: E402

SUITE = "suites/network_policy/test_stars.py"


def suite_wall(lab: Lab, run_id: str) -> float:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", SUITE,
            "--topology", str(lab.paths.topology), "--run-id", run_id]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"suite run failed:\n{proc.stdout[-2000:]}")
    return wall


def kubectl_loop(lab: Lab, run_id: str) -> tuple[float, int]:
    """Deploy, then every step's matrix with one `kubectl exec ... nc` per case, in order."""
    start = time.monotonic()
    env = lab.workloads(run_id)
    scenario = deploy(env)
    kubectl = kubectl_binary()
    present: frozenset[str] = frozenset()
    cases = 0
    for _step, added in STEPS:
        present |= added
        set_policies(env, present)
        time.sleep(0.5)  # what the suite's convergence loop absorbs; a hand loop waits too
        for src, tasks in scenario.tasks().items():
            namespace, pod = src.name.split("/")
            for task in tasks:
                target = [task.destination.ip, str(task.probe.port)]
                argv = [kubectl, "--kubeconfig", str(lab.topology.kubeconfig),
                        "--context", f"lab-{src.cluster}", "exec", "-n", namespace, pod,
                        "--", "nc", "-z", "-w", "2", *target]  # fmt: skip
                subprocess.run(argv, capture_output=True, check=False)
                cases += 1
    wall = time.monotonic() - start
    for client in lab.clients.values():
        client.delete_suite_namespaces(f"netconform.io/run-id={run_id}")
    return wall, cases


def main() -> None:
    regions = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    figures: dict[str, Any] = {"regions": regions, "runs": runs}
    with running_lab(regions, figures, prefix="ncp") as lab:
        suite = [suite_wall(lab, f"bench-np-{i}") for i in range(runs)]
        loop = [kubectl_loop(lab, f"bench-np-loop-{i}") for i in range(runs)]
    figures["suite_s"] = suite
    figures["suite_median_s"] = statistics.median(suite)
    figures["kubectl_loop_s"] = [w for w, _ in loop]
    figures["kubectl_loop_median_s"] = statistics.median(w for w, _ in loop)
    figures["cases_per_run"] = loop[0][1]
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
