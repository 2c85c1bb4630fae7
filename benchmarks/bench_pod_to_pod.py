"""Where the time goes: lab up/down, the pod-to-pod suite serial and with -n 2, and by hand.

A benchmark, not a test: it prints figures and writes them to benchmarks/results/*.json.

    python benchmarks/bench_pod_to_pod.py [--regions 3 9] [--runs 5] [--manual-limit N]

For each region count it builds one lab (prefix `ncb`, state in a temporary directory, always
stopped at the end) and times, once per region count:
  - lab up and lab down;
  - the same probe set the way people do it by hand: a sequential loop of
    `kubectl exec POD -- ping -c 3 ...` and `kubectl exec POD -- nc -z ...` per pod pair.
    With --manual-limit N only the first N execs run and the total is extrapolated (said so
    in the output; by default all at 3 regions, 150 above).
and then, in each of --runs rounds, side by side (the order alternates from round to round):
  - the pod-to-pod suite as users run it: `python -m pytest suites/pod_to_pod --topology ...`
    against the running lab, serial and with `-n 2`. Every run has a fresh `--run-id`, so each
    pays what a user's run pays: deploying the probe pods, measuring, deleting them;
  - its phases in process: deploying the probe pods, measuring (one exec per source pod, all
    at once), deleting them (until gone);
  - the ICMP tool: the same scenario measured with `icmp_tool: fping` (one process per source
    pod) and `icmp_tool: ping` (one process per pair), with the RTTs each reports.

Figures are given as min / median / max over the rounds; ratios are of medians, and for
serial / -n 2 also the median of the per-round ratios (measured side by side).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fixtures.workloads import Workloads  # noqa: E402
from netconform.cluster import ClusterClient  # noqa: E402
from netconform.outcomes import Endpoint  # noqa: E402
from netconform.probes import Probe, Task, kind  # noqa: E402
from netconform.result import Result  # noqa: E402
from netconform.scenario import Scenario, measure  # noqa: E402
from netconform.topology import Topology, load_topology  # noqa: E402
from netconform.vantage import RunnerVantage  # noqa: E402
from provisioning.lab import control  # noqa: E402
from provisioning.lab.control import LabPaths  # noqa: E402
from suites.pod_to_pod.test_pod_to_pod import probe_pods  # noqa: E402

PREFIX = "ncb"
RUN_ID_LABEL = "netconform.io/run-id"
MANAGED_BY = {"app.kubernetes.io/managed-by": "netconform"}
SUITE_MODES = {"serial": [], "n2": ["-n", "2"]}
ICMP_TOOLS = ("fping", "ping")
#: what the suite runs cost: each a fresh run id (deploy, measure, delete), no --keep-workloads
RUN_COST = "fresh --run-id per suite run: every run deploys, measures and deletes its pods"

T = TypeVar("T")


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def spread(values: Sequence[float]) -> dict[str, float]:
    """min / median / max of a figure over its runs."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "n": len(values),
    }


class Lab:
    """One running lab, its topology and a client per cluster."""

    def __init__(self, paths: LabPaths) -> None:
        self.paths = paths
        self.topology: Topology = load_topology(paths.topology)
        self.clients = {
            str(c.name): ClusterClient(c, self.topology.kubeconfig, self.topology.timeouts)
            for c in self.topology.clusters
        }

    def workloads(self, run_id: str) -> Workloads:
        labels = {**MANAGED_BY, RUN_ID_LABEL: run_id}
        return Workloads(self.topology, dict(self.clients), labels)

    def delete(self, run_id: str) -> None:
        """Delete a run's workloads and wait until they are gone (pod names repeat per run)."""
        selector = f"{RUN_ID_LABEL}={run_id}"
        for cluster in self.topology.clusters:
            client = self.clients[str(cluster.name)]
            client.delete_labelled(cluster.namespace, selector)
        for cluster in self.topology.clusters:
            self.clients[str(cluster.name)].wait_deleted(cluster.namespace, selector)


@contextmanager
def running_lab(regions: int, figures: dict[str, Any], prefix: str = PREFIX) -> Iterator[Lab]:
    """A lab of its own (prefix ncb unless told) for the benchmark; down in any case, timed."""
    with TemporaryDirectory(prefix="netconform-bench-") as tmp:
        paths = LabPaths(Path(tmp) / "lab")
        try:
            _, figures["lab_up_s"] = timed(control.up, paths, regions=regions, prefix=prefix)
            yield Lab(paths)
        finally:
            _, figures["lab_down_s"] = timed(control.down, paths, prefix=prefix)


def suite_wall(lab: Lab, mode: str, run_id: str) -> tuple[float, list[str]]:
    """One pytest process of the pod-to-pod suite against the running lab: wall-clock and
    the failed cases it reported (a healthy lab should have none; they are kept as data)."""
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "suites/pod_to_pod",
        "--topology",
        str(lab.paths.topology),
        "-p",
        "no:cacheprovider",
        "-q",
        "--run-id",
        run_id,
        *SUITE_MODES[mode],
    ]
    proc, seconds = timed(
        subprocess.run, argv, cwd=REPO, capture_output=True, text=True, check=False
    )
    failures = [ln.strip() for ln in proc.stdout.splitlines() if " expected " in ln]
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not failures):
        raise SystemExit(
            f"suite ({mode}) did not run (exit {proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    # the run deleted its pods without waiting; let them go before the next timed step
    lab.delete(run_id)
    return seconds, failures


def rtt_figures(result: Result) -> dict[str, float | int | None]:
    """How clean the RTTs read: per-case averages and maxima over every ICMP case, in ms."""
    stats = [c.ping for c in result.cases if c.protocol == "icmp" and c.ping is not None]
    avgs = [s.rtt_avg for s in stats if s.rtt_avg is not None]
    maxes = [s.rtt_max for s in stats if s.rtt_max is not None]
    return {
        "icmp_cases": len(stats),
        "lossy_cases": sum(1 for s in stats if s.loss_percent > 0),
        "rtt_avg_median_ms": statistics.median(avgs) if avgs else None,
        "rtt_avg_max_ms": max(avgs) if avgs else None,
        "rtt_max_ms": max(maxes) if maxes else None,
    }


def with_tool(scenario: Scenario, tool: str) -> Scenario:
    return dataclasses.replace(
        scenario, settings=dataclasses.replace(scenario.settings, icmp_tool=tool)
    )


def in_process(lab: Lab, run_id: str, tools: Sequence[str]) -> dict[str, Any]:
    """Deploy, measure, compare ICMP tools side by side in `tools` order, delete."""
    scenario, deploy = timed(probe_pods, lab.workloads(run_id))
    try:
        result, measured = timed(measure, scenario)
        failures = [c.describe() for c in result.failed]
        icmp: dict[str, dict[str, Any]] = {}
        for tool in tools:
            tool_result, seconds = timed(measure, with_tool(scenario, tool))
            icmp[tool] = {
                "measure_s": seconds,
                **rtt_figures(tool_result),
                "failures": [c.describe() for c in tool_result.failed],
            }
    finally:
        _, delete = timed(lab.delete, run_id)
    return {
        "deploy_s": deploy,
        "measure_s": measured,
        "delete_s": delete,
        "pods": len(scenario.vantages),
        "cases": len(result.cases),
        "icmp_tool": scenario.settings.icmp_tool,
        "failures": failures,
        "icmp": icmp,
    }


def manual_loop(lab: Lab, limit: int) -> dict[str, Any]:
    """`kubectl exec` once per probe (ping per pair, as by hand), one after the other."""
    run_id = "bench-manual"
    scenario = probe_pods(lab.workloads(run_id))
    try:
        everyone = list(scenario.vantages)
        probes = [Probe("icmp"), Probe("tcp", lab.topology.probe.tcp_port)]
        plan = Scenario({p: RunnerVantage() for p in everyone}, everyone, probes).tasks()
        jobs: list[tuple[Endpoint, Task]] = [(s, t) for s, ts in plan.items() for t in ts]
        run = jobs[:limit] if limit else jobs
        by_hand = dataclasses.replace(lab.topology.probe, icmp_tool="ping")
        kubectl = kubectl_path()
        failed = 0
        start = time.perf_counter()
        for src, task in run:
            namespace = lab.topology.cluster(src.cluster).namespace
            proc = subprocess.run(
                [
                    kubectl,
                    "--kubeconfig",
                    str(lab.paths.kubeconfig),
                    "--context",
                    f"lab-{src.cluster}",
                    "exec",
                    "-n",
                    namespace,
                    src.name,
                    "--",
                    *kind(task.probe.kind).argv(task, by_hand),
                ],
                capture_output=True,
                check=False,
            )
            failed += proc.returncode != 0
        seconds = time.perf_counter() - start
    finally:
        lab.delete(run_id)
    return {
        "execs_run": len(run),
        "execs_total": len(jobs),
        "execs_failed": failed,
        "seconds_run": seconds,
        "seconds_total": seconds * len(jobs) / len(run),
        "extrapolated": len(run) < len(jobs),
    }


def kubectl_path() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise SystemExit("kubectl not found (neither in the virtualenv nor on PATH)")
    return found


def bench(regions: int, runs: int, manual_limit: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"regions": regions, "loadavg_before": loadavg()}
    rounds: list[dict[str, Any]] = []
    with running_lab(regions, figures) as lab:
        for n in range(runs):
            order = list(SUITE_MODES) if n % 2 == 0 else list(reversed(SUITE_MODES))
            tools = ICMP_TOOLS if n % 2 == 0 else ICMP_TOOLS[::-1]
            one: dict[str, Any] = {"round": n, "order": order, "loadavg": loadavg()}
            for mode in order:
                run_id = f"bench-{regions}r-{n}-{mode}"
                one[f"suite_{mode}_s"], one[f"suite_{mode}_failures"] = suite_wall(
                    lab, mode, run_id
                )
            one["ratio_serial_over_n2"] = one["suite_serial_s"] / one["suite_n2_s"]
            one.update(in_process(lab, f"bench-{regions}r-{n}-inproc", tools))
            rounds.append(one)
            print(
                f"  {regions} regions, round {n + 1}/{runs} ({' then '.join(order)}): "
                f"serial {one['suite_serial_s']:.2f}s, -n 2 {one['suite_n2_s']:.2f}s; "
                f"deploy {one['deploy_s']:.2f}s, measure {one['measure_s']:.2f}s, "
                f"delete {one['delete_s']:.2f}s; fping {one['icmp']['fping']['measure_s']:.2f}s"
                f", ping {one['icmp']['ping']['measure_s']:.2f}s; load {one['loadavg']}",
                flush=True,
            )
            for what, failures in failed_in(one).items():
                print(
                    f"    FAILED cases in {what}: {len(failures)}, e.g. {failures[0]}", flush=True
                )
        figures["manual"] = manual_loop(lab, manual_limit)
    figures["loadavg_after"] = loadavg()
    figures["pods"] = rounds[0]["pods"]
    figures["cases"] = rounds[0]["cases"]
    figures["rounds"] = rounds
    figures["summary"] = summarize(rounds)
    figures["ratio_manual_over_serial"] = (
        figures["manual"]["seconds_total"] / figures["summary"]["suite_serial_s"]["median"]
    )
    return figures


def failed_in(one: dict[str, Any]) -> dict[str, list[str]]:
    """Failed cases of a round (loss, unreachable) by where they were seen; empty if clean."""
    found = {
        "suite serial": one["suite_serial_failures"],
        "suite -n 2": one["suite_n2_failures"],
        "in-process measure": one["failures"],
        **{f"measure with {t}": one["icmp"][t]["failures"] for t in ICMP_TOOLS},
    }
    return {what: failures for what, failures in found.items() if failures}


#: per-round figures summarized as min / median / max: (key in the summary, path in a round)
FIGURES: dict[str, tuple[str, ...]] = {
    "suite_serial_s": ("suite_serial_s",),
    "suite_n2_s": ("suite_n2_s",),
    "ratio_serial_over_n2": ("ratio_serial_over_n2",),
    "deploy_s": ("deploy_s",),
    "measure_s": ("measure_s",),
    "delete_s": ("delete_s",),
    **{
        f"{tool}_{key}": ("icmp", tool, key)
        for tool in ICMP_TOOLS
        for key in ("measure_s", "rtt_avg_median_ms", "rtt_avg_max_ms", "rtt_max_ms")
    },
    **{f"{tool}_lossy_cases": ("icmp", tool, "lossy_cases") for tool in ICMP_TOOLS},
}


def summarize(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    summary = {}
    for name, path in FIGURES.items():
        values = []
        for one in rounds:
            value: Any = one
            for key in path:
                value = value[key]
            if value is not None:
                values.append(float(value))
        if values:
            summary[name] = spread(values)
    return summary


def show(value: dict[str, float], unit: str = "s") -> str:
    digits = 2 if unit == "s" else 3
    return (
        f"{value['median']:.{digits}f}{unit} "
        f"({value['min']:.{digits}f}-{value['max']:.{digits}f}, n={value['n']:.0f})"
    )


def report(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Print the figures, the ratios and the default they suggest; return the verdict."""
    print(f"\nsuite runs: {RUN_COST}")
    print("figures: median (min-max, n runs)")
    for r in results:
        s, manual = r["summary"], r["manual"]
        extrapolated = (
            f", extrapolated from {manual['execs_run']}" if manual["extrapolated"] else ""
        )
        print(f"\n{r['regions']} regions ({r['pods']} pods, {r['cases']} cases)")
        print(f"  lab up {r['lab_up_s']:.2f}s, lab down {r['lab_down_s']:.2f}s (n=1)")
        print(f"  suite serial      {show(s['suite_serial_s'])}")
        print(f"  suite -n 2        {show(s['suite_n2_s'])}")
        print(f"  serial / -n 2     {show(s['ratio_serial_over_n2'], 'x')} (per round)")
        print(f"  deploy            {show(s['deploy_s'])}")
        print(f"  measure           {show(s['measure_s'])}")
        print(f"  delete            {show(s['delete_s'])}")
        for tool in ICMP_TOOLS:
            print(f"  measure, {tool:5}    {show(s[f'{tool}_measure_s'])}")
            if f"{tool}_rtt_max_ms" in s:
                print(
                    f"    RTT {tool:5}: median of per-pair avg "
                    f"{show(s[f'{tool}_rtt_avg_median_ms'], 'ms')}, worst avg "
                    f"{show(s[f'{tool}_rtt_avg_max_ms'], 'ms')}, worst max "
                    f"{show(s[f'{tool}_rtt_max_ms'], 'ms')}; lossy pairs "
                    f"{s[f'{tool}_lossy_cases']['max']:.0f} at most"
                )
        print(
            f"  by hand           {manual['seconds_total']:.1f}s for {manual['execs_total']} "
            f"kubectl execs ({manual['execs_failed']} failed{extrapolated}); "
            f"{r['ratio_manual_over_serial']:.0f}x the serial suite"
        )
        bad = [(one["round"], what, f) for one in r["rounds"] for what, f in failed_in(one).items()]
        print(
            f"  runs with failed cases on a healthy lab: {len(bad)}"
            + "".join(f"\n    round {n + 1} {what}: {len(f)}, e.g. {f[0]}" for n, what, f in bad)
        )
        print(f"  load average: before {r['loadavg_before']}, after {r['loadavg_after']}")
    verdict: dict[str, Any] = {"ratios": {}}
    serial_faster = {
        r["regions"]: r["summary"]["ratio_serial_over_n2"]["median"] < 1.0 for r in results
    }
    by_regions = {r["regions"]: r for r in results}
    if len(by_regions) >= 2:
        low, high = min(by_regions), max(by_regions)
        print(f"\nratios {high} / {low} regions (medians; separate labs, one after the other):")
        for name in ("suite_serial_s", "suite_n2_s", "deploy_s", "measure_s", "delete_s"):
            ratio = (
                by_regions[high]["summary"][name]["median"]
                / by_regions[low]["summary"][name]["median"]
            )
            verdict["ratios"][f"{name}_{high}_over_{low}"] = ratio
            print(f"  {name:18} {ratio:.2f}x")
        for name in ("lab_up_s", "lab_down_s"):
            ratio = by_regions[high][name] / by_regions[low][name]
            verdict["ratios"][f"{name}_{high}_over_{low}"] = ratio
            print(f"  {name:18} {ratio:.2f}x (n=1)")
        best = min(
            by_regions[high]["summary"]["suite_serial_s"]["median"],
            by_regions[high]["summary"]["suite_n2_s"]["median"],
        ) / min(
            by_regions[low]["summary"]["suite_serial_s"]["median"],
            by_regions[low]["summary"]["suite_n2_s"]["median"],
        )
        verdict["goal_best_high_over_low"] = best
        verdict["goal_met"] = best <= 2.5
        print(
            f"  goal {high} regions within 2.5x of {low} (best mode each): {best:.2f}x, "
            f"{'met' if best <= 2.5 else 'NOT met'}"
        )
    if all(serial_faster.values()):
        default = "serial"
    elif not any(serial_faster.values()):
        default = "-n 2"
    else:
        default = "mixed: " + ", ".join(
            f"{n} regions {'serial' if f else '-n 2'}" for n, f in sorted(serial_faster.items())
        )
    verdict["suggested_default"] = default
    ratios = "; ".join(
        f"{n} regions serial/-n 2 = {r['summary']['ratio_serial_over_n2']['median']:.2f}"
        for n, r in sorted(by_regions.items())
    )
    print(f"\nsuggested default: {default} ({ratios}; below 1 means serial is faster)")
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--regions", type=int, nargs="+", default=[3, 9])
    parser.add_argument("--runs", type=int, default=5, help="rounds per region count")
    parser.add_argument(
        "--manual-limit",
        type=int,
        default=-1,
        help="run only the first N manual execs and extrapolate "
        "(0: all; default: all at 3 regions or fewer, 150 above)",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    os.chdir(REPO)  # the lab daemon runs from the working directory's clone
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f"load average at start: {loadavg()} ({os.cpu_count()} cpus)", flush=True)
    results = []
    for regions in args.regions:
        limit = args.manual_limit if args.manual_limit >= 0 else (0 if regions <= 3 else 150)
        print(f"{regions} regions: {args.runs} rounds", flush=True)
        results.append(bench(regions, args.runs, limit))
    verdict = report(results)
    print(f"\nload average at end: {loadavg()}")
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"pod_to_pod-{time.strftime('%Y%m%d-%H%M%S')}.json"
    document = {
        "started": started,
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "suite_runs": RUN_COST,
        "results": results,
        **verdict,
    }
    path.write_text(json.dumps(document, indent=2))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
