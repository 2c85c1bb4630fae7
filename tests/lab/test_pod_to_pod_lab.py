"""The pod-to-pod suite against the real lab: healthy, then with each fault it must catch."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.lab import control, network
from provisioning.lab.control import LabPaths
from tests.labrun import remove_run, run_suite
from tests.tools import kubectl_binary

SUITE = "suites/pod_to_pod"
RUN_ID = "selftest-pod-to-pod"
#: every run reuses the same probe pods, so a fault on a pod hits the pod the suite probes
KEEP = ["--run-id", RUN_ID, "--keep-workloads"]
REGIONS = ("central", "east", "west")
ALL_PAIRS = {f"{a}->{b}" for a in REGIONS for b in REGIONS}


NCX = f"ncx{os.getpid() % 10000}"  # unique per test process


@pytest.fixture(scope="module")
def probes_kept(lab: LabPaths) -> Iterator[LabPaths]:
    """The lab; the probe pods this module's runs share are removed at the end."""
    yield lab
    remove_run(lab, RUN_ID)


@pytest.fixture
def healed(probes_kept: LabPaths) -> Iterator[LabPaths]:
    """The lab, with every fault undone afterwards even when the test fails."""
    yield probes_kept
    control.call(probes_kept, "POST", "/heal", {})


def test_healthy_lab_passes_every_pair(probes_kept: LabPaths, tmp_path: Path) -> None:
    run = run_suite([SUITE, "--topology", str(probes_kept.topology), *KEEP], tmp_path)
    assert run.rc == 0, run.output[-3000:]
    assert set(run.outcomes) == ALL_PAIRS
    assert set(run.outcomes.values()) == {"passed"}
    assert "pod-to-pod       9 passed, 0 failed, 0 skipped" in run.output


def test_cut_peering_fails_exactly_the_pairs_across_it(healed: LabPaths, tmp_path: Path) -> None:
    control.call(healed, "POST", "/fault", {"name": "cut-peering", "args": ["east", "west"]})
    run = run_suite([SUITE, "--topology", str(healed.topology), *KEEP], tmp_path)
    assert run.failed() == {"east->west", "west->east"}, run.output[-3000:]
    assert {k for k, v in run.outcomes.items() if v == "passed"} == ALL_PAIRS - run.failed()
    message = run.messages["east->west"]
    assert "expected ALLOW observed TIMEOUT" in message
    assert "east/probe-" in message and "-> west/probe-" in message
    assert "(10.101." in message and "(10.102." in message  # the addresses of the pair
    assert "only cross-region traffic fails (east<->west)" in message


def test_blackholed_pod_fails_only_its_own_cases(healed: LabPaths, tmp_path: Path) -> None:
    status = control.call(healed, "GET", "/status")
    victim = next(p for p in status["pods"] if p["cluster"] == "west" and "probe" in p["name"])
    name = f"west/{victim['name']}"
    control.call(healed, "POST", "/fault", {"name": "blackhole-pod", "args": [name]})
    run = run_suite([SUITE, "--topology", str(healed.topology), *KEEP], tmp_path)
    assert run.failed() == {f"{r}->west" for r in REGIONS} | {f"west->{r}" for r in REGIONS}
    for pair in run.failed():
        lines = [ln for ln in run.messages[pair].splitlines() if "expected ALLOW" in ln]
        assert lines and all(victim["name"] in ln for ln in lines), run.messages[pair]
    assert f"every failed case involves west/{victim['name']}" in run.messages["east->west"]


def test_kubectl_lists_pods_and_pings_across_regions(probes_kept: LabPaths, tmp_path: Path) -> None:
    lab = probes_kept
    status = control.call(lab, "GET", "/status")
    probes = [p for p in status["pods"] if p["name"].startswith("probe-")]
    if not any(p["cluster"] == "west" for p in probes):  # run alone: deploy the probes
        assert run_suite([SUITE, "--topology", str(lab.topology), *KEEP], tmp_path).rc == 0
        status = control.call(lab, "GET", "/status")
        probes = [p for p in status["pods"] if p["name"].startswith("probe-")]
    east = next(p for p in probes if p["cluster"] == "east")
    west = next(p for p in probes if p["cluster"] == "west")
    kubectl = [kubectl_binary(), "--kubeconfig", str(lab.kubeconfig), "--context", "lab-east"]
    listing = subprocess.run(
        [*kubectl, "get", "pods", "-A"], capture_output=True, text=True, check=False, timeout=30
    )
    assert listing.returncode == 0, listing.stderr
    assert east["name"] in listing.stdout
    ping = subprocess.run(
        [*kubectl, "exec", "-n", "east", east["name"], "--", "ping", "-c1", "-W2", west["ip"]],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "1 received" in ping.stdout


def test_xdist_builds_the_lab_once_measures_once_and_matches_serial(
    lab: LabPaths, tmp_path: Path
) -> None:
    own = LabPaths(tmp_path / "own-lab")
    args = [SUITE, "-n", "2", "--lab-dir", str(own.root), "--lab-prefix", NCX, "--keep-lab"]
    try:
        parallel = run_suite([*args, "--keep-workloads"], tmp_path)
        assert parallel.rc == 0, parallel.output[-3000:]
        assert parallel.output.count("netconform: building lab") == 1, parallel.output
        assert (own.log).read_text().count("network built") == 1
        pods = control.call(own, "GET", "/status")["pods"]
        execs = {
            f"{p['cluster']}/{p['name']}": p["execs"]
            for p in pods
            if p["namespace"] not in ("kube-system", "ingress-nginx")
        }
        assert len(execs) == 12 and set(execs.values()) == {1}, execs  # one batch per source
    finally:
        control.down(own)
    assert not network.list_netns(NCX)
    serial = run_suite([SUITE, "--topology", str(lab.topology)], tmp_path)
    assert serial.outcomes == parallel.outcomes
    assert set(serial.outcomes) == ALL_PAIRS
