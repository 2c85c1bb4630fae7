"""The canary suite against the real lab: the split passes at weights 5 (seed 004's), 20 and
50; `canary-skew` fails exactly that cluster's weight test with the share, its interval, the
requests used and the cap in the message; the overrides stay green meanwhile."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import SuiteRun, remove_run, run_suite

SUITE = "suites/canary"
RUN_ID = "selftest-canary"
REGIONS = ("central", "east", "west")
VERDICT = re.compile(
    r"canary share (\d+\.\d)% \(95% CI (\d+\.\d)-(\d+\.\d)\) expected (\d+)% \+-([\d.]+) "
    r"after (\d+) requests \(cap (\d+)\)"
)


@pytest.fixture(scope="module")
def kept(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    control.call(lab, "POST", "/heal", {})
    remove_run(lab, RUN_ID)


def with_weight(lab: LabPaths, tmp_path: Path, weight: int) -> Path:
    doc = yaml.safe_load(lab.topology.read_text())
    doc["kubeconfig"] = str(lab.kubeconfig)
    doc["ingress"] = {"canary_weight": weight}
    path = tmp_path / f"topology-{weight}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def suite(topology: Path, tmp_path: Path) -> SuiteRun:
    args = [SUITE, "--topology", str(topology), "--run-id", RUN_ID, "--keep-workloads"]
    return run_suite(args, tmp_path)


@pytest.mark.parametrize("weight", [5, 20, 50])
def test_the_split_passes_at_its_weight(kept: LabPaths, tmp_path: Path, weight: int) -> None:
    run = suite(with_weight(kept, tmp_path, weight), tmp_path)
    assert run.rc == 0, run.output[-3000:]
    assert run.outcomes == {
        f"{r}/canary.example:{a}": "passed" for r in REGIONS for a in ("weight", "overrides")
    }


def test_a_skew_fails_that_clusters_weight_only(kept: LabPaths, tmp_path: Path) -> None:
    topology = with_weight(kept, tmp_path, 20)
    suite(topology, tmp_path)  # the canary Ingress exists for the fault to skew
    control.call(
        kept,
        "POST",
        "/fault",
        {"name": "canary-skew", "args": ["east/east/netconform-canary", "40"]},
    )
    try:
        run = suite(topology, tmp_path)
    finally:
        control.call(kept, "POST", "/heal", {})
    assert run.failed() == {"east/canary.example:weight"}, run.output[-3000:]
    message = run.messages["east/canary.example:weight"]
    found = VERDICT.search(message)
    assert found is not None, message
    share, low, high, weight, tolerance, requests, cap = found.groups()
    assert 30 < float(share) < 50 and float(low) < float(share) < float(high), message
    assert (weight, tolerance) == ("20", "5") and int(requests) < int(cap), message
    assert "above 25% (w+d)" in message, message
    assert (
        "the canary Ingress netconform-canary in east says 20% but the controller sends" in message
    )
