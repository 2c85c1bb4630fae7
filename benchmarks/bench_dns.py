"""The dns matrix (suites/dns/test_dns.py: every probe pod's own-cluster names, pod records,
NXDOMAIN and every other region's headless echo through the stubs) vs a sequential
`kubectl exec POD -- nslookup -type=T NAME` loop over the same names.

One lab of its own (prefix ncbdns, so another benchmark's lab is never touched) with REGIONS
regions (default 3). Per run: the suite as a user runs it (one pytest process, fresh run id:
deploy, measure, delete); then in-process, the same scenario built once and measured with the
engine (`measure`), and the hand loop over its tasks, one exec after another. Medians of RUNS
(default 3). Prints JSON.

    python benchmarks/bench_dns.py [REGIONS] [RUNS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_pod_to_pod import Lab  # noqa: E402
from netconform.scenario import Scenario, measure  # noqa: E402
from provisioning.lab import control  # noqa: E402
from provisioning.lab.control import LabPaths  # noqa: E402
from suites.dns.test_dns import names  # noqa: E402
from tests.tools import kubectl_binary  # noqa: E402

SUITE = "suites/dns/test_dns.py"
PREFIX = "ncbdns"


def suite_wall(lab: Lab, run_id: str) -> float:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", SUITE,
            "--topology", str(lab.paths.topology), "--run-id", run_id]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"suite run failed:\n{proc.stdout[-2000:]}")
    return wall


def hand_loop(lab: Lab, scenario: Scenario) -> tuple[float, int, int]:
    """One `kubectl exec ... nslookup` per case of the scenario, in order: wall, cases, failed
    (nslookup's exit code: 0 for an answer, 1 for NXDOMAIN and other errors)."""
    kubectl = kubectl_binary()
    cases = failed = 0
    start = time.monotonic()
    for src, tasks in scenario.tasks().items():
        namespace, pod = lab.topology.cluster(src.cluster).namespace, src.name
        for task in tasks:
            dst = task.destination
            argv = [kubectl, "--kubeconfig", str(lab.topology.kubeconfig),
                    "--context", f"lab-{src.cluster}", "exec", "-n", namespace, pod, "--",
                    "nslookup", f"-type={dst.record or 'A'}", "-timeout=2", dst.name]  # fmt: skip
            done = subprocess.run(argv, capture_output=True, check=False)
            cases += 1
            failed += done.returncode != 0
    return time.monotonic() - start, cases, failed


def one_round(lab: Lab, run: int) -> dict[str, Any]:
    suite = suite_wall(lab, f"bench-dns-{run}")
    run_id = f"bench-dns-loop-{run}"
    env = lab.workloads(run_id)
    start = time.monotonic()
    scenario = names(env)
    deploy = time.monotonic() - start
    start = time.monotonic()
    assert scenario.expect is not None  # the answers the builder read from the API
    result = measure(scenario, scenario.expect)
    engine = time.monotonic() - start
    loop, cases, nonzero = hand_loop(lab, scenario)
    lab.delete(run_id)
    return {
        "suite_s": suite,
        "deploy_s": deploy,
        "engine_measure_s": engine,
        "engine_failed": len(result.failed),
        "kubectl_loop_s": loop,
        "cases": cases,
        "nslookup_nonzero": nonzero,
    }


def main() -> None:
    regions = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    figures: dict[str, Any] = {"regions": regions, "runs": runs}
    with TemporaryDirectory(prefix="netconform-bench-dns-") as tmp:
        paths = LabPaths(Path(tmp) / "lab")
        start = time.monotonic()
        try:
            control.up(paths, regions=regions, prefix=PREFIX)
            figures["lab_up_s"] = time.monotonic() - start
            lab = Lab(paths)
            rounds = [one_round(lab, i) for i in range(runs)]
        finally:
            control.down(paths, prefix=PREFIX)
    for key in ("suite_s", "deploy_s", "engine_measure_s", "kubectl_loop_s"):
        figures[key] = [round(r[key], 2) for r in rounds]
        figures[f"{key.removesuffix('_s')}_median_s"] = round(statistics.median(figures[key]), 2)
    figures["cases_per_run"] = rounds[0]["cases"]
    figures["engine_failed"] = [r["engine_failed"] for r in rounds]
    figures["nslookup_nonzero"] = [r["nslookup_nonzero"] for r in rounds]
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
