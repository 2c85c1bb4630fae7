"""Pods as pods, through the real kubectl against the real lab: a pod's own hostname and
/etc/hosts, a private filesystem view (nothing written in a pod, nor by `kubectl cp`, reaches
the host), graceful deletion (Terminating, grace period honoured, then gone) and the
container command run inside the pod."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from netconform.waits import wait_until
from provisioning.lab.control import LabPaths
from tests.tools import kubectl_binary

NS = "east"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def pod(name: str, command: list[str], grace: int = 0, ports: tuple[int, ...] = ()) -> str:
    container: dict[str, object] = {"name": "main", "image": "busybox:1.36", "command": command}
    if ports:
        container["ports"] = [{"containerPort": p} for p in ports]
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"test": "pods-as-pods"}},
        "spec": {"terminationGracePeriodSeconds": grace, "containers": [container]},
    }
    return yaml.safe_dump(manifest)


@pytest.fixture(scope="module")
def kubectl(lab: LabPaths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    cache = tmp_path_factory.mktemp("kubectl-cache")

    def run(
        *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [kubectl_binary(), "--kubeconfig", str(lab.kubeconfig), "--context",
                f"lab-{NS}", "--cache-dir", str(cache), "-n", NS, *args]  # fmt: skip
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60,
                              check=False)  # fmt: skip
        assert not check or proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc

    yield run
    run("delete", "pods", "-l", "test=pods-as-pods", "--grace-period=0", "--force", check=False)


def running(kubectl: Kubectl, name: str) -> None:
    kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=30s")


@pytest.fixture(scope="module")
def sleeper(kubectl: Kubectl) -> str:
    kubectl("apply", "-f", "-", stdin=pod("pp-sleeper", ["sleep", "3600"]))
    running(kubectl, "pp-sleeper")
    return "pp-sleeper"


def test_hostname_and_hosts_are_the_pods(kubectl: Kubectl, sleeper: str) -> None:
    assert kubectl("exec", sleeper, "--", "hostname").stdout.strip() == sleeper
    ip = kubectl("get", "pod", sleeper, "-o", "jsonpath={.status.podIP}").stdout.strip()
    hosts = kubectl("exec", sleeper, "--", "cat", "/etc/hosts").stdout
    assert "# Kubernetes-managed hosts file." in hosts
    assert "127.0.0.1\tlocalhost" in hosts and f"{ip}\t{sleeper}" in hosts.splitlines()
    host_hosts = Path("/etc/hosts").read_text()
    assert f"{ip}\t{sleeper}" not in host_hosts


def test_the_container_command_runs_in_the_pod(kubectl: Kubectl, sleeper: str) -> None:
    log = kubectl("logs", sleeper).stdout
    assert "container main: command: sleep 3600" in log, log
    # a listener the pod declares no port for: the command itself serves it
    kubectl("apply", "-f", "-", stdin=pod("pp-listener", ["nc", "-lk", "-p", "7000"]))
    running(kubectl, "pp-listener")
    ip = kubectl("get", "pod", "pp-listener", "-o", "jsonpath={.status.podIP}").stdout.strip()
    probe = kubectl("exec", sleeper, "--", "nc", "-z", "-w", "3", ip, "7000", check=False)
    assert probe.returncode == 0, probe.stderr
    closed = kubectl("exec", sleeper, "--", "nc", "-z", "-w", "3", ip, "7001", check=False)
    assert closed.returncode != 0


def test_files_written_in_a_pod_stay_in_the_pod(
    kubectl: Kubectl, sleeper: str, tmp_path: Path
) -> None:
    marker = f"pp-{uuid.uuid4().hex[:8]}"
    for place in ("/tmp", "/root", "/var/tmp", "/home"):
        kubectl("exec", sleeper, "--", "sh", "-c", f"echo in-pod > {place}/{marker}")
        assert kubectl("exec", sleeper, "--", "cat", f"{place}/{marker}").stdout == "in-pod\n"
        assert not Path(place, marker).exists(), f"{place}/{marker} reached the host"
    relative = kubectl("exec", sleeper, "--", "sh", "-c", f"echo x > {marker} && pwd")
    assert relative.stdout.strip() == "/root" and not Path(marker).exists()
    elsewhere = kubectl("exec", sleeper, "--", "touch", f"/etc/{marker}", check=False)
    assert elsewhere.returncode != 0 and "Read-only file system" in elsewhere.stderr
    assert not Path("/etc", marker).exists()
    # kubectl cp runs tar through exec: in, back out, never on the host
    source = tmp_path / "in.txt"
    source.write_text("copied in\n")
    kubectl("cp", str(source), f"{NS}/{sleeper}:/tmp/{marker}.txt")
    assert not Path(f"/tmp/{marker}.txt").exists()
    assert kubectl("exec", sleeper, "--", "cat", f"/tmp/{marker}.txt").stdout == "copied in\n"
    back = tmp_path / "out.txt"
    kubectl("cp", f"{NS}/{sleeper}:/tmp/{marker}.txt", str(back))
    assert back.read_text() == "copied in\n"


def test_delete_shows_terminating_then_the_grace_period_ends_it(kubectl: Kubectl) -> None:
    stubborn = ["sh", "-c", "trap '' TERM; sleep 3600"]  # ignores SIGTERM: SIGKILL ends it
    kubectl("apply", "-f", "-", stdin=pod("pp-stubborn", stubborn, grace=3))
    running(kubectl, "pp-stubborn")
    started = time.monotonic()
    kubectl("delete", "pod", "pp-stubborn", "--wait=false")
    obj = json.loads(kubectl("get", "pod", "pp-stubborn", "-o", "json").stdout)
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 3
    assert obj["metadata"]["deletionTimestamp"]
    table = kubectl("get", "pods", "pp-stubborn", "--no-headers").stdout
    assert table.split()[2] == "Terminating", table

    def gone() -> bool:
        return "NotFound" in kubectl("get", "pod", "pp-stubborn", check=False).stderr

    wait_until(gone, timeout=15, name="pod_deleted")
    assert time.monotonic() - started >= 2.5  # the grace period was honoured


def test_a_pod_that_stops_on_sigterm_goes_at_once_and_force_removes_now(
    kubectl: Kubectl,
) -> None:
    kubectl("apply", "-f", "-", stdin=pod("pp-polite", ["sleep", "3600"], grace=30))
    running(kubectl, "pp-polite")
    started = time.monotonic()
    kubectl("delete", "pod", "pp-polite")  # waits until gone: sleep ends on SIGTERM
    assert time.monotonic() - started < 10
    kubectl("apply", "-f", "-", stdin=pod("pp-forced", ["sh", "-c", "trap '' TERM; sleep 3600"],
                                           grace=30))  # fmt: skip
    running(kubectl, "pp-forced")
    kubectl("delete", "pod", "pp-forced", "--grace-period=0", "--force")
    assert "NotFound" in kubectl("get", "pod", "pp-forced", check=False).stderr


def test_scale_down_and_namespace_delete_go_through_the_same_grace(kubectl: Kubectl) -> None:
    stubborn = {"name": "c", "image": "busybox:1.36",
                "command": ["sh", "-c", "trap '' TERM; sleep 3600"]}  # fmt: skip
    template = {"metadata": {"labels": {"app": "pp-dep"}},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [stubborn]}}  # fmt: skip
    manifests = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pp-ns"}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "pp-dep", "namespace": "pp-ns"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "pp-dep"}},
                  "template": template}},
    ]  # fmt: skip
    kubectl("-n", "pp-ns", "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
    kubectl("-n", "pp-ns", "wait", "--for=condition=Ready", "pod", "-l", "app=pp-dep",
            "--timeout=30s")  # fmt: skip
    kubectl("-n", "pp-ns", "scale", "deployment", "pp-dep", "--replicas=1")
    statuses = kubectl("-n", "pp-ns", "get", "pods", "--no-headers").stdout.split("\n")
    assert sorted(line.split()[2] for line in statuses if line) == ["Running", "Terminating"]
    kubectl("delete", "namespace", "pp-ns", "--wait=false")
    assert "Terminating" in kubectl("get", "namespace", "pp-ns", "--no-headers").stdout
    refused = kubectl("-n", "pp-ns", "create", "configmap", "x", "--dry-run=client", "-o", "yaml")
    created = kubectl("-n", "pp-ns", "apply", "-f", "-", stdin=refused.stdout, check=False)
    assert "because it is being terminated" in created.stderr, created.stderr
    kubectl("wait", "--for=delete", "namespace/pp-ns", "--timeout=30s")
