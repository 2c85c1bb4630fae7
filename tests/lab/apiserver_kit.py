"""Shared by the lab API server tests: a fake runtime, the lab handle, request helpers."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from provisioning.lab.apiserver import (
    Event,
    LabApiServer,
    NodeSpec,
)
from tests.lab.fields import model, need, phase

T = TypeVar("T")
SERVICE_CIDR = "10.201.0.0/16"
WEST_CIDR = "10.202.0.0/16"
PENDING = "lab-test/pending"  # label: the fake runtime leaves such pods Pending
NODES = (
    NodeSpec(
        "east-node-0", "10.101.0.10", {"topology.kubernetes.io/region": "east"}, "10.101.1.0/24"
    ),
    NodeSpec(
        "east-node-1", "10.101.0.11", {"topology.kubernetes.io/region": "east"}, "10.101.2.0/24"
    ),
)
WEST_NODES = (NodeSpec("west-node-0", "10.102.0.10", {"topology.kubernetes.io/region": "west"}),)


# -- the lab under test ------------------------------------------------------------------------


@dataclass
class FakeRuntime:
    """Subscriber standing in for the lab runtime: marks new pods Running with a fake IP."""

    server: LabApiServer | None = None
    events: list[tuple[str, Event]] = field(default_factory=list)
    execs: list[tuple[str, str, str, str, list[str]]] = field(default_factory=list)
    counter: int = 0

    async def on_event(self, cluster: str, event: Event) -> None:
        self.events.append((cluster, event))
        labels = event.obj["metadata"].get("labels") or {}
        if event.kind != "Pod" or event.type != "ADDED" or PENDING in labels:
            return
        assert self.server is not None
        self.counter += 1
        ip = str(ipaddress.ip_address("10.244.0.0") + self.counter)
        containers = event.obj["spec"]["containers"]
        status = {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": c["name"], "ready": True, "state": {"running": {}}}
                                  for c in containers],
        }  # fmt: skip
        meta = event.obj["metadata"]
        await self.server.stores[cluster].update_pod_status(meta["namespace"], meta["name"], status)

    async def exec_handler(
        self, cluster: str, namespace: str, pod: str, container: str, argv: list[str]
    ) -> asyncio.subprocess.Process:
        self.execs.append((cluster, namespace, pod, container, argv))
        pipe = asyncio.subprocess.PIPE
        return await asyncio.create_subprocess_exec(*argv, stdin=pipe, stdout=pipe, stderr=pipe)

    async def log_handler(
        self, cluster: str, namespace: str, pod: str, container: str, previous: bool
    ) -> str:
        before = "previous " if previous else ""
        return f"{before}first {cluster}/{namespace}/{pod}/{container}\nsecond\nthird\n"


@dataclass
class Lab:
    server: LabApiServer
    runtime: FakeRuntime
    loop: asyncio.AbstractEventLoop
    kubeconfig: Path
    ports: dict[str, int]

    def api(self, context: str = "lab-east") -> client.ApiClient:
        return api_client(self.kubeconfig, context)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)


def api_client(kubeconfig: Path, context: str) -> client.ApiClient:
    """A client of one context of a kubeconfig (the client's config loader is unannotated)."""
    api = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), context=context
    )
    assert isinstance(api, client.ApiClient)
    return api


def wait_for(check: Callable[[], T | None], timeout: float = 5.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy (bounded); that value, not None."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last value {value!r})")
        time.sleep(0.01)


def pod_body(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox:1.36",
                 "ports": [{"name": "http", "containerPort": 8080}]}  # fmt: skip
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [container], **spec}}  # fmt: skip


def running_pod(core: client.CoreV1Api, ns: str, name: str, **kw: Any) -> client.V1Pod:
    core.create_namespaced_pod(ns, model(client.V1Pod, pod_body(name, **kw)))

    def running() -> client.V1Pod | None:
        pod = core.read_namespaced_pod(name, ns)
        return pod if phase(pod) == "Running" else None

    return wait_for(running, what=f"pod {name} running")


def status_body(exc: ApiException) -> dict[str, Any]:
    body = yaml.safe_load(need(exc.body, "body (the error carried no Status)"))
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return dict(body)


def expect_error(status: int, reason: str, call: Callable[[], object]) -> dict[str, Any]:
    with pytest.raises(ApiException) as info:
        call()
    assert info.value.status == status, info.value.body
    body = status_body(info.value)
    assert body["reason"] == reason, body
    return body


def svc_body(name: str, selector: dict[str, str] | None, **spec: Any) -> dict[str, Any]:
    ports = spec.pop("ports", [{"name": "http", "port": 80, "targetPort": "http"}])
    return {"metadata": {"name": name}, "spec": {"selector": selector, "ports": ports, **spec}}


def endpoints(core: client.CoreV1Api, ns: str, name: str) -> dict[str, Any]:
    try:
        ep = core.read_namespaced_endpoints(name, ns)
    except ApiException:
        return {}
    subsets = ep.subsets or []
    return {
        "ready": sorted(target(a) for s in subsets for a in s.addresses or []),
        "not_ready": sorted(target(a) for s in subsets for a in s.not_ready_addresses or []),
        "ports": sorted((p.name, p.port) for s in subsets for p in s.ports or []),
    }


def target(address: client.V1EndpointAddress) -> str:
    """The name of the pod an Endpoints address points at."""
    return need(need(address.target_ref, "targetRef").name, "targetRef.name")


def deployment_body(name: str, replicas: int, image: str = "nginx:1.25") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "c", "image": image, "ports": [
                             {"name": "http", "containerPort": 8080}]}]}},
        },
    }  # fmt: skip


def owned_pods(core: client.CoreV1Api, ns: str, app: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(ns, label_selector=f"app={app}").items)


def run_exec(
    core: client.CoreV1Api, ns: str, pod: str, argv: list[str], stdin: str | None = None,
    **kw: Any,
) -> tuple[str, str, int]:  # fmt: skip
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        ns,
        command=argv,
        stdout=True,
        stderr=True,
        stdin=stdin is not None,
        tty=False,
        _preload_content=False,
        **kw,
    )
    if stdin is not None:
        resp.write_stdin(stdin)
        resp.close_channel(0)
    resp.run_forever(timeout=10)
    out, err, code = resp.read_stdout(), resp.read_stderr(), resp.returncode
    resp.close()
    return out, err, code
