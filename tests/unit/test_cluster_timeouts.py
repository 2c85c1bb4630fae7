"""Named timeouts bound the waits they name, even against a server that never answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from netconform.cluster import ClusterClient
from netconform.command import CommandResult
from netconform.errors import ApiUnreachableError
from netconform.topology import Cluster, ClusterName, Namespace, Region, Timeouts


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections (the kernel's backlog) and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def client_for(port: int, tmp_path: Path, timeouts: Timeouts) -> ClusterClient:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "silent",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "silent", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    cluster = Cluster(
        name=ClusterName("east"),
        context="silent",
        region=Region("east"),
        namespace=Namespace("east"),
        pod_cidrs=(),
    )
    return ClusterClient(cluster, kubeconfig, timeouts)


def test_api_ready_bounds_the_wait_not_the_request_timeout(
    silent_server: int, tmp_path: Path
) -> None:
    client = client_for(silent_server, tmp_path, Timeouts(api_ready=1.0))
    started = time.monotonic()
    with pytest.raises(ApiUnreachableError):
        client.wait_api()
    assert time.monotonic() - started < 4.0  # REQUEST_TIMEOUT alone is 10 s


def test_exec_timeout_bounds_an_unanswered_exec(silent_server: int, tmp_path: Path) -> None:
    client = client_for(silent_server, tmp_path, Timeouts(exec=1.0))
    result: list[CommandResult | BaseException] = []

    def run() -> None:
        try:
            result.append(client.exec("east", "probe-0-0", ["true"]))
        except BaseException as err:  # reported below
            result.append(err)

    started = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=15)
    assert not worker.is_alive(), "exec still waits for the server after 15 s (exec: 1 s)"
    assert time.monotonic() - started < 4.0
    (outcome,) = result
    assert isinstance(outcome, CommandResult), repr(outcome)
    assert outcome.rc == 124 and "timed out" in outcome.stderr, outcome
