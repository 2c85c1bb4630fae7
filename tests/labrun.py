"""Run the suites as a user would (a real pytest process) and read the outcome per test id."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from netconform.cluster import ClusterClient
from netconform.topology import load_topology
from provisioning.lab.control import LabPaths

REPO = Path(__file__).resolve().parents[1]


def remove_run(lab: LabPaths, run_id: str) -> None:
    """Delete what a run kept (`--keep-workloads`) in every cluster, by its run-id label."""
    topology = load_topology(lab.topology)
    for cluster in topology.clusters:
        client = ClusterClient(cluster, topology.kubeconfig, topology.timeouts)
        client.delete_labelled(cluster.namespace, f"netconform.io/run-id={run_id}")


@dataclass(frozen=True)
class SuiteRun:
    """One real pytest run of suites/ as a user would start it, read back from JUnit XML."""

    rc: int
    output: str
    outcomes: dict[str, str]
    """test id (the part in brackets) -> passed / failed / skipped / error."""
    messages: dict[str, str]
    stderr: str = ""

    def failed(self) -> set[str]:
        return {k for k, v in self.outcomes.items() if v == "failed"}


def run_suite(
    args: list[str], tmp_path: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> SuiteRun:
    junit = tmp_path / f"junit-{len(list(tmp_path.glob('junit-*')))}.xml"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        "-q",
        *args,
    ]
    proc = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = case.get("name", "")
            key = name[name.find("[") + 1 : -1] if "[" in name else name
            outcome = "passed"
            for tag in ("failure", "error", "skipped"):
                node = case.find(tag)
                if node is not None:
                    outcome = {"failure": "failed"}.get(tag, tag)
                    messages[key] = (node.get("message") or "") + "\n" + (node.text or "")
            outcomes[key] = outcome
    return SuiteRun(proc.returncode, proc.stdout + proc.stderr, outcomes, messages, proc.stderr)
