"""`pytest suites --build` on a lab build topology, for real: the build makes the lab from the
topology's build sections, the suites run against it, the session's end removes it (no
namespace with its prefix is left); with `--keep-built` it stays for `netconform-cloud
destroy --run-id`, which removes exactly that lab."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from provisioning.lab import network
from provisioning.lab_build import lab_prefix
from tests.labrun import REPO, run_suite

#: Two regions of one node each: the whole path stays quick on 2 shared CPUs.
TOPOLOGY = """\
name: lab-build-test
clusters:
  - name: central
    pod_cidrs: [10.101.0.0/16]
    service_cidrs: [172.20.0.0/16]
    cloud: lab
    build: {vpc_cidr: 10.101.0.0/16, node_count: 1}
  - name: east
    pod_cidrs: [10.102.0.0/16]
    cloud: lab
    build: {vpc_cidr: 10.102.0.0/16, node_count: 1}
"""


@pytest.fixture
def topology(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (network namespaces)")
    path = tmp_path / "lab-build.yaml"
    path.write_text(TOPOLOGY)
    return path


def netns_of(run_id: str) -> list[str]:
    return network.list_netns(lab_prefix(run_id))


def test_build_runs_the_suites_on_the_built_lab_then_removes_it_or_keeps_it(
    topology: Path, tmp_path: Path
) -> None:
    gone = f"lbt-{uuid.uuid4().hex[:8]}"
    run = run_suite(
        ["suites/pod_to_pod", "--build", "--topology", str(topology), "--run-id", gone], tmp_path
    )
    assert run.rc == 0, run.output[-3000:]
    assert run.outcomes and set(run.outcomes.values()) == {"passed"}, run.outcomes
    assert f"netconform: build: run id: {gone}" in run.output
    assert "netconform: build: build plan: 9 to create, 2 unchanged" in run.output
    assert "dns glue: netconform-kube plan: no changes" in run.output
    assert f"built clusters destroyed (run {gone}: destroyed 1 resources)" in run.output
    assert netns_of(gone) == []

    kept = f"lbt-{uuid.uuid4().hex[:8]}"
    try:
        run = run_suite(
            ["suites/pod_to_pod", "--build", "--keep-built", "--topology", str(topology),
             "--run-id", kept],
            tmp_path,
        )  # fmt: skip
        assert run.rc == 0, run.output[-3000:]
        assert "built clusters destroyed" not in run.output
        assert netns_of(kept), "--keep-built left nothing up"
        done = subprocess.run(
            [sys.executable, "-m", "provisioning.cli", "destroy", "--run-id", kept],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"destroy: 1 lab(s) built by run id {kept}" in done.stdout
        assert netns_of(kept) == []
    finally:
        if netns_of(kept):  # never leave a lab behind, whatever failed
            subprocess.run(
                [sys.executable, "-m", "provisioning.cli", "destroy", "--run-id", kept],
                cwd=REPO,
                timeout=120,
                check=False,
            )
