"""The lab protects the host and cleans up after itself, whatever happens to its owner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from netconform.cluster import ClusterClient
from netconform.errors import LabError
from netconform.topology import load_topology
from netconform.waits import wait_until
from provisioning.lab import control, network
from provisioning.lab.control import LabPaths
from tests.labrun import REPO

PREFIX = f"ncs{os.getpid() % 10000}"


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5):
            return 200
    except urllib.error.HTTPError as err:
        return err.code


def test_api_and_control_refuse_callers_without_the_lab_secret(lab: LabPaths) -> None:
    state = control.read_state(lab)
    assert state is not None
    port = state["api_ports"]["east"]
    assert status_of(f"http://127.0.0.1:{port}/api/v1/namespaces/east/pods") == 401
    secret_url = f"http://127.0.0.1:{port}/s/{state['token']}/api/v1/namespaces/east/pods"
    assert status_of(secret_url) == 200
    assert status_of(f"http://127.0.0.1:{state['control_port']}/status") == 401
    for path in (lab.kubeconfig, lab.state):
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    assert lab.root.stat().st_mode & 0o077 == 0


def test_stale_state_never_signals_an_unrelated_process(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        paths.state.write_text(
            json.dumps({"pid": bystander.pid, "prefix": PREFIX, "control_port": 1, "token": "x"})
        )
        assert control.read_state(paths) is None
        control.down(paths)
        assert bystander.poll() is None, "down signalled a process that is not the lab"
    finally:
        bystander.kill()
        bystander.wait()


def test_lab_built_by_a_killed_pytest_goes_away(tmp_path: Path) -> None:
    """kill -9 of the run that built the lab: the daemon notices its owner is gone."""
    lab_dir = tmp_path / "orphan"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "suites/pod_to_pod",
        "--lab-dir",
        str(lab_dir),
        "--lab-prefix",
        PREFIX,
        "-k",
        "central->central",
    ]
    # a run killed outright cannot remove its per-run temp dir: keep it in tmp_path
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    run = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    paths = LabPaths(lab_dir)
    try:
        state = wait_until(lambda: control.read_state(paths), timeout=60, name="lab_up")
        os.kill(run.pid, signal.SIGKILL)
        assert run.wait() == -signal.SIGKILL, "the run ended by itself before it was killed"
        wait_until(
            lambda: not network.list_netns(PREFIX),
            timeout=30,
            name="orphan_gone",
            describe=lambda: f"still there: {network.list_netns(PREFIX)}",
        )
        with pytest.raises(ProcessLookupError):
            wait_until(lambda: os.kill(int(state["pid"]), 0), timeout=10, name="daemon_gone")
    finally:
        if run.poll() is None:
            run.kill()
        control.down(paths, prefix=PREFIX)


def test_pods_deleted_while_being_wired_leave_nothing(lab: LabPaths) -> None:
    topology = load_topology(lab.topology)
    east = ClusterClient(topology.cluster("east"), topology.kubeconfig, topology.timeouts)
    node = "east-node-0"
    state = control.read_state(lab)
    assert state is not None
    prefix = f"{state['prefix']}-east-east"
    before = set(network.list_netns(prefix))
    for i in range(15):
        east.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"churn-{i}", "namespace": "east"},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
            }
        )
        east.delete("Pod", f"churn-{i}", "east")

    def settled() -> bool:
        return set(network.list_netns(prefix)) == before

    wait_until(
        settled,
        timeout=30,
        name="churn_settled",
        describe=lambda: f"left: {set(network.list_netns(prefix)) - before}",
    )


def test_heal_survives_a_deleted_blackholed_pod(lab: LabPaths) -> None:
    topology = load_topology(lab.topology)
    west = ClusterClient(topology.cluster("west"), topology.kubeconfig, topology.timeouts)
    west.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "victim", "namespace": "west"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        }
    )
    west.wait_pods_ready("west", "", 1)
    control.call(lab, "POST", "/fault", {"name": "blackhole-pod", "args": ["west/victim"]})
    control.call(lab, "POST", "/fault", {"name": "cut-peering", "args": ["east", "west"]})
    west.delete("Pod", "victim", "west")
    wait_until(
        lambda: not any(p["name"] == "victim" for p in control.call(lab, "GET", "/status")["pods"]),
        timeout=20,
        name="victim_gone",
    )
    healed = control.call(lab, "POST", "/heal", {})["healed"]
    assert healed == ["cut-peering east west", "blackhole-pod west/victim"]
    assert control.call(lab, "GET", "/status")["faults"] == []
    with pytest.raises(LabError, match="no pod named"):
        control.call(lab, "POST", "/fault", {"name": "blackhole-pod", "args": ["west/victim"]})


def test_the_lab_secret_is_in_no_log_line_or_cli_message(lab: LabPaths) -> None:
    state = control.read_state(lab)
    assert state is not None
    port = state["api_ports"]["east"]
    # a request the API server refuses, and one of a path it does not serve, with the secret
    assert status_of(f"http://127.0.0.1:{port}/s/{state['token']}x/api/v1/pods") == 401
    assert status_of(f"http://127.0.0.1:{port}/s/{state['token']}/nowhere") == 404
    argv = [sys.executable, "-m", "provisioning.lab", "--state-dir", str(lab.root)]
    outputs = [
        subprocess.run([*argv, *cmd], cwd=REPO, capture_output=True, text=True, check=False)
        for cmd in (["status"], ["fault", "cut-peering", "east", "nowhere"], ["shell", "nobody"])
    ]
    texts = [lab.log.read_text(errors="replace")] + [o.stdout + o.stderr for o in outputs]
    for text in texts:
        assert state["token"] not in text, text[-2000:]
