"""Where the time goes: lab up/down, the pod-to-pod suite, and the same probes by hand.

A benchmark, not a test: it prints figures and writes them to benchmarks/results/*.json.

    python benchmarks/bench_pod_to_pod.py [--regions 3 9] [--manual-limit 0]

For each region count it builds a lab (own prefix `ncb`), times:
  - lab up and lab down;
  - the pod-to-pod suite as users run it (a pytest process against the running lab),
    serial and with -n 2;
  - its phases in process: deploying the probe pods, measuring (one exec per source pod, all
    at once), deleting;
  - the same probe set the way people do it by hand: a sequential loop of
    `kubectl exec POD -- ping -c 3 ...` and `kubectl exec POD -- nc -z ...` per pod pair.
    With --manual-limit N only the first N pairs are run and the total is extrapolated
    (said so in the output).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fixtures.workloads import Workloads, load_manifest  # noqa: E402
from netconform.cluster import ClusterClient  # noqa: E402
from netconform.outcomes import Endpoint  # noqa: E402
from netconform.probes import probe_argv  # noqa: E402
from netconform.reachability import measure, plan_probes  # noqa: E402
from netconform.topology import load_topology  # noqa: E402
from netconform.vantage import PodVantage  # noqa: E402
from provisioning.lab import control  # noqa: E402
from provisioning.lab.control import LabPaths  # noqa: E402

PREFIX = "ncb"
PROBE_POD = load_manifest(REPO / "suites/pod_to_pod/probe-pod.yaml")


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def suite_wall(paths: LabPaths, extra: list[str]) -> float:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "suites/pod_to_pod",
        "--topology",
        str(paths.topology),
        *extra,
    ]
    proc, seconds = timed(
        subprocess.run, argv, cwd=REPO, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"suite failed on a healthy lab:\n{proc.stdout[-2000:]}")
    return float(seconds)


def phases(paths: LabPaths) -> tuple[dict[str, float], dict[str, list[Endpoint]]]:
    topology = load_topology(paths.topology)
    clients = {
        str(c.name): ClusterClient(c, topology.kubeconfig, topology.timeouts)
        for c in topology.clusters
    }
    labels = {"app.kubernetes.io/managed-by": "netconform", "netconform.io/run-id": "bench"}
    work = Workloads(topology, clients, labels)
    settings = topology.probe
    pods, deploy = timed(
        work.pods_on_every_node,
        PROBE_POD,
        "probe",
        topology.images.probe,
        settings.tcp_port,
        settings.pods_per_node,
    )
    everyone = [p for ps in pods.values() for p in ps]
    vantages = {
        p: PodVantage(clients[p.cluster], topology.cluster(p.cluster).namespace, p.name)
        for p in everyone
    }
    observations, measured = timed(measure, vantages, everyone, settings)
    assert all(o.case.passed for o in observations), "healthy lab must pass"
    return {
        "deploy_s": deploy,
        "measure_s": measured,
        "pods": len(everyone),
        "cases": len(observations),
    }, pods


def manual_loop(paths: LabPaths, pods: dict[str, list[Endpoint]], limit: int) -> dict[str, Any]:
    """`kubectl exec` once per probe, one pair after the other."""
    topology = load_topology(paths.topology)
    everyone = [p for ps in pods.values() for p in ps]
    plan = plan_probes(everyone, everyone, topology.probe.tcp_port)
    jobs = [(src, spec) for src, probes in plan.items() for spec, _ in probes]
    run = jobs[:limit] if limit else jobs
    start = time.perf_counter()
    for src, spec in run:
        namespace = topology.cluster(src.cluster).namespace
        subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(paths.kubeconfig),
                "--context",
                f"lab-{src.cluster}",
                "exec",
                "-n",
                namespace,
                src.name,
                "--",
                *probe_argv(spec, topology.probe),
            ],
            capture_output=True,
            check=False,
        )
    seconds = time.perf_counter() - start
    total = seconds * len(jobs) / len(run)
    return {
        "execs_run": len(run),
        "execs_total": len(jobs),
        "seconds_run": seconds,
        "seconds_total": total,
        "extrapolated": len(run) < len(jobs),
    }


def bench(regions: int, manual_limit: int) -> dict[str, Any]:
    with TemporaryDirectory(prefix="netconform-bench-") as tmp:
        paths = LabPaths(Path(tmp))
        _, up = timed(control.up, paths, regions=regions, prefix=PREFIX)
        try:
            serial = suite_wall(paths, [])
            parallel = suite_wall(paths, ["-n", "2"])
            inside, pods = phases(paths)
            manual = manual_loop(paths, pods, manual_limit)
        finally:
            _, down = timed(control.down, paths, prefix=PREFIX)
    return {
        "regions": regions,
        "lab_up_s": up,
        "lab_down_s": down,
        "suite_serial_s": serial,
        "suite_n2_s": parallel,
        **inside,
        "manual": manual,
        "ratio_manual_over_suite": manual["seconds_total"] / serial,
    }


def _extrapolated(manual: dict[str, Any]) -> str:
    return f" (extrapolated from {manual['execs_run']})" if manual["extrapolated"] else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, nargs="+", default=[3, 9])
    parser.add_argument(
        "--manual-limit",
        type=int,
        default=0,
        help="run only the first N manual execs and extrapolate (0: all)",
    )
    args = parser.parse_args()
    results = []
    for regions in args.regions:
        limit = args.manual_limit or (0 if regions <= 3 else 150)
        result = bench(regions, limit)
        results.append(result)
        manual = result["manual"]
        print(
            f"{regions} regions: lab up {result['lab_up_s']:.2f}s, down "
            f"{result['lab_down_s']:.2f}s; suite {result['suite_serial_s']:.1f}s serial, "
            f"{result['suite_n2_s']:.1f}s with -n 2 ({result['pods']} pods, "
            f"{result['cases']} cases; deploy {result['deploy_s']:.2f}s, measure "
            f"{result['measure_s']:.2f}s); by hand {manual['seconds_total']:.0f}s for "
            f"{manual['execs_total']} kubectl execs"
            f"{_extrapolated(manual)}"
            f"; ratio {result['ratio_manual_over_suite']:.0f}x",
            flush=True,
        )
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"pod_to_pod-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
