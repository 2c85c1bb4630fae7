"""Fixtures of the lab API server tests: one in-memory API server per test module."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from provisioning.lab.apiserver import (
    ClusterSpec,
    LabApiServer,
)
from provisioning.lab.controllers import CONTROLLERS
from tests.lab.apiserver_kit import (
    NODES,
    SERVICE_CIDR,
    WEST_CIDR,
    WEST_NODES,
    FakeRuntime,
    Lab,
)
from tests.lab.fields import model
from tests.tools import kubectl_binary


@pytest.fixture(scope="module")
def lab_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="lab-apiserver", daemon=True)
    thread.start()
    runtime = FakeRuntime()
    clusters = [
        ClusterSpec("east", 0, NODES, SERVICE_CIDR, namespaces=("apps",)),
        ClusterSpec("west", 0, WEST_NODES, WEST_CIDR, viewer_token="west-viewer"),
    ]
    server = LabApiServer(clusters, runtime.exec_handler, runtime.log_handler, CONTROLLERS)
    runtime.server = server
    server.subscribe(runtime.on_event)
    ports = asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    kubeconfig = server.write_kubeconfig(tmp_path_factory.mktemp("lab") / "kubeconfig")
    yield Lab(server, runtime, loop, kubeconfig, ports)
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.fixture(scope="module")
def core(lab_api: Lab) -> client.CoreV1Api:
    return client.CoreV1Api(lab_api.api())


@pytest.fixture
def ns(lab_api: Lab, core: client.CoreV1Api) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(model(client.V1Namespace, {"metadata": {"name": name}}))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        assert exc.status == 404


@pytest.fixture
def kubectl(lab_api: Lab, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    binary = kubectl_binary()

    def run(
        *args: str, stdin: str | None = None, context: str = "lab-east"
    ) -> subprocess.CompletedProcess[str]:
        command = [binary, "--kubeconfig", str(lab_api.kubeconfig), "--context", context,
                   "--cache-dir", str(tmp_path / "cache"), *args]  # fmt: skip
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30,
                               check=False)  # fmt: skip

    return run
