"""The lab's in-memory Kubernetes API: exec and logs, kubectl, and shutdown with open streams."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from provisioning.lab.apiserver import (
    ClusterSpec,
    LabApiServer,
    write_kubeconfig,
)
from tests.lab.apiserver_kit import (
    NODES,
    PENDING,
    SERVICE_CIDR,
    FakeRuntime,
    Lab,
    api_client,
    deployment_body,
    expect_error,
    pod_body,
    run_exec,
    running_pod,
    wait_for,
)
from tests.lab.fields import meta, model, need, phase, pod_ip, unpreloaded

# -- exec and logs -----------------------------------------------------------------------------


def test_exec_streams_and_exit_codes(lab_api: Lab, core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "sh")
    assert run_exec(core, ns, "sh", ["sh", "-c", "echo out; echo err >&2"]) == ("out\n", "err\n", 0)
    assert run_exec(core, ns, "sh", ["sh", "-c", "echo bye; exit 3"]) == ("bye\n", "", 3)
    assert lab_api.runtime.execs[-1] == ("east", ns, "sh", "main", ["sh", "-c", "echo bye; exit 3"])


def test_exec_stdin_is_closed_by_v5_close_frame(core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "cat")
    text = "".join(f"line {i}\n" for i in range(5000))
    assert run_exec(core, ns, "cat", ["cat"], stdin=text) == (text, "", 0)
    assert run_exec(core, ns, "cat", ["wc", "-l"], stdin="a\nb\n")[0].strip() == "2"


def test_exec_large_output_arrives_intact(core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "big")
    out, err, code = run_exec(core, ns, "big", ["sh", "-c", "seq 1 170000; seq 1 1000 >&2"])
    assert code == 0 and len(out) > 1_000_000
    assert out == "".join(f"{i}\n" for i in range(1, 170001))
    assert err == "".join(f"{i}\n" for i in range(1, 1001))


def test_exec_failures(core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "p")
    _, err, code = run_exec(core, ns, "p", ["no-such-binary-xyz", "arg"])
    assert code == 127 and 'exec: "no-such-binary-xyz": executable file not found' in err
    with pytest.raises(ApiException) as info:
        run_exec(core, ns, "ghost", ["true"])
    assert "404" in str(info.value.reason)
    core.create_namespaced_pod(ns, model(client.V1Pod, pod_body("waiting", {PENDING: "1"})))
    with pytest.raises(ApiException) as info:
        run_exec(core, ns, "waiting", ["true"])
    assert "400" in str(info.value.reason) and "is not running" in str(info.value.reason)
    with pytest.raises(ApiException) as info:
        run_exec(core, ns, "p", ["true"], container="nope")
    assert "400" in str(info.value.reason)


def test_exec_round_trip_latency(core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "fast")
    samples = []
    for _ in range(20):
        started = time.perf_counter()
        assert run_exec(core, ns, "fast", ["true"]) == ("", "", 0)
        samples.append(time.perf_counter() - started)
    median = statistics.median(samples)
    print(f"exec round trip: median {median * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms")
    assert median < 0.5


def test_pod_logs(core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "logger")
    text = core.read_namespaced_pod_log("logger", ns)
    assert text == f"first east/{ns}/logger/main\nsecond\nthird\n"
    assert core.read_namespaced_pod_log("logger", ns, tail_lines=1) == "third\n"
    previous = core.read_namespaced_pod_log("logger", ns, previous=True)
    assert previous.startswith("previous first "), previous
    expect_error(404, "NotFound", lambda: core.read_namespaced_pod_log("ghost", ns))


# -- kubectl -----------------------------------------------------------------------------------


def test_kubectl_get_and_exec(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], core: client.CoreV1Api, ns: str
) -> None:
    pod = running_pod(core, ns, "kc")
    got = kubectl("get", "po", "-A", "-o", "wide")
    assert got.returncode == 0, got.stderr
    row = next(line.split() for line in got.stdout.splitlines() if line.startswith(ns))
    assert row[:4] == [ns, "kc", "1/1", "Running"] and pod_ip(pod) in row
    assert kubectl("get", "svc,deploy,no,ns,netpol,ing,ep,cm", "-n", ns).returncode == 0
    shell = kubectl("exec", "-n", ns, "kc", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (shell.returncode, shell.stdout) == (3, "out\n")
    assert "err\n" in shell.stderr
    text = "".join(f"stdin line {i}\n" for i in range(2000))
    cat = kubectl("exec", "-i", "-n", ns, "kc", "--", "cat", stdin=text)
    assert (cat.returncode, cat.stdout) == (0, text), cat.stderr


def test_kubectl_viewer_context_is_read_only(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], core: client.CoreV1Api, ns: str
) -> None:
    running_pod(core, ns, "ro")
    assert kubectl("get", "pods", "-n", ns, context="lab-east-viewer").returncode == 0
    for args in (("delete", "pod", "ro"), ("exec", "ro", "--", "true"), ("label", "pod", "ro",
                                                                          "a=b")):  # fmt: skip
        denied = kubectl("-n", ns, *args, context="lab-east-viewer")
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    assert meta(core.read_namespaced_pod("ro", ns)).labels == {}


def test_kubectl_run_it_attaches_to_a_shell_image(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], lab_api: Lab, ns: str
) -> None:
    run = kubectl("run", "--image=alpine:3.5", "-it", "shell", "-n", ns,
                  stdin="echo attached-$((6 * 7))\nexit\n")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "attached-42" in run.stdout
    assert "couldn't attach" not in run.stderr
    assert lab_api.runtime.execs[-1] == ("east", ns, "shell", "shell", ["sh"])
    again = kubectl("attach", "-i", "shell", "-n", ns, stdin="echo again\n")
    assert (again.returncode, again.stdout.strip()) == (0, "again"), again.stderr
    denied = kubectl("attach", "-i", "shell", "-n", ns, context="lab-east-viewer", stdin="")
    assert denied.returncode != 0
    assert 'cannot create resource "pods/attach"' in denied.stderr, denied.stderr


def test_attach_to_an_echo_server_says_it_cannot(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], core: client.CoreV1Api, ns: str
) -> None:
    body = pod_body("echo")
    body["spec"]["containers"][0]["image"] = "nginx:1.25"  # the lab's echo server
    core.create_namespaced_pod(ns, model(client.V1Pod, body))
    wait_for(lambda: phase(core.read_namespaced_pod("echo", ns)) == "Running")
    refused = kubectl("attach", "echo", "-n", ns)
    assert refused.returncode != 0
    assert "cannot be attached in the netconform lab" in refused.stderr, refused.stderr


def test_kubectl_apply_creates_and_updates(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], lab_api: Lab, ns: str, tmp_path: Path
) -> None:
    manifest = deployment_body("applied", 2)
    manifest.update(apiVersion="apps/v1", kind="Deployment")
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(manifest))
    first = kubectl("apply", "-n", ns, "-f", str(path))
    assert first.returncode == 0, first.stderr
    manifest["spec"]["replicas"] = 1
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
    path.write_text(yaml.safe_dump(manifest))
    second = kubectl("apply", "-n", ns, "-f", str(path))
    assert second.returncode == 0 and "configured" in second.stdout, second.stderr
    dep = client.AppsV1Api(lab_api.api()).read_namespaced_deployment("applied", ns)
    spec = need(dep.spec, "deployment spec")
    container = need(spec.template.spec, "template spec").containers[0]
    assert spec.replicas == 1 and container.image == "nginx:1.27"
    assert need(container.ports, "container ports")[0].container_port == 8080


# -- shutdown ----------------------------------------------------------------------------------


def test_stop_ends_open_exec_and_watch_streams(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    server = LabApiServer([ClusterSpec("solo", 0, NODES[:1], SERVICE_CIDR)], runtime.exec_handler)
    runtime.server = server
    server.subscribe(runtime.on_event)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        ports = asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        api = api_client(write_kubeconfig(tmp_path / "kc", ports), "lab-solo")
        core = client.CoreV1Api(api)
        running_pod(core, "default", "sleeper")
        session = stream(core.connect_get_namespaced_pod_exec, "sleeper", "default",
                         command=["sleep", "30"], stdout=True, stderr=True, stdin=False,
                         tty=False, _preload_content=False)  # fmt: skip
        watcher = unpreloaded(
            core.list_namespaced_pod("default", watch=True, _preload_content=False)
        )
        started = time.monotonic()
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        assert time.monotonic() - started < 3
        session.run_forever(timeout=5)
        assert not session.is_open()
        watcher.read()  # the stream has ended
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
