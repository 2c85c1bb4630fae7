"""The lab's API server under bad input and load answers as kube-apiserver does (400, 413, 401,
404, 429, each with a Status body), keeps serving, and loses or corrupts nothing it stored."""

from __future__ import annotations

import asyncio
import copy
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from provisioning.lab.apiserver import ClusterSpec, LabApiServer
from provisioning.lab.apiserver.limits import MAX_BODY_BYTES
from provisioning.lab.controllers import CONTROLLERS
from tests.lab.apiserver_kit import NODES, SERVICE_CIDR, FakeRuntime, wait_for

SECRET = "limits-test-secret-0123456789ab"
CLIENTS = 200


class Api:
    """One secret-protected cluster on loopback, its loop in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        runtime = FakeRuntime()
        spec = ClusterSpec("east", 0, NODES, SERVICE_CIDR, namespaces=("apps",), secret=SECRET)
        self.server = LabApiServer([spec], runtime.exec_handler, runtime.log_handler, CONTROLLERS)
        runtime.server = self.server
        self.server.subscribe(runtime.on_event)
        self.port = self.call(self.server.start())["east"]
        self.prefix = f"/s/{SECRET}"

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def snapshot(self) -> Any:
        """Every stored object, copied on the server's own loop."""

        async def copy_store() -> Any:
            store = self.server.stores["east"]
            return copy.deepcopy(store._objects), store.resource_version

        return self.call(copy_store())

    def request(
        self, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None, secret: bool = True,
    ) -> tuple[int, dict[str, str], Any]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, (self.prefix if secret else "") + path, body, headers or {})
            resp = conn.getresponse()
            raw = resp.read()
            try:
                data = json.loads(raw)
            except ValueError:
                data = raw
            return resp.status, dict(resp.getheaders()), data
        finally:
            conn.close()

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    served = Api()
    status, _, _ = served.request(
        "POST", "/api/v1/namespaces/apps/configmaps", json.dumps(configmap("kept")).encode(),
        {"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 201
    yield served
    served.close()


def configmap(name: str, value: str = "v") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"key": value}}  # fmt: skip


def assert_status(answer: tuple[int, dict[str, str], Any], code: int, reason: str) -> None:
    status, _, body = answer
    assert status == code, body
    assert isinstance(body, dict) and body["kind"] == "Status", body
    assert (body["code"], body["reason"], body["status"]) == (code, reason, "Failure"), body


PODS = "/api/v1/namespaces/apps/pods"
JSON = {"Content-Type": "application/json"}
PROTOBUF = {"Content-Type": "application/vnd.kubernetes.protobuf"}


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "secret", "code", "reason"),
    [
        ("POST", PODS, b'{"metadata": ', JSON, True, 400, "BadRequest"),
        ("POST", PODS, b"\xff\xfe not json", JSON, True, 400, "BadRequest"),
        ("POST", PODS, b"k8s\x00\x0a\xff\xff\xff\xff\x0f", PROTOBUF, True, 400, "BadRequest"),
        ("POST", PODS, b"not even the magic", PROTOBUF, True, 400, "BadRequest"),
        ("POST", PODS, b" " * (MAX_BODY_BYTES + 1), JSON, True, 413, "RequestEntityTooLarge"),
        ("GET", PODS, None, {}, False, 401, "Unauthorized"),
        ("GET", PODS, None, {"Authorization": "Bearer wrong-token"}, False, 401, "Unauthorized"),
        ("GET", "/api/v1/namespaces/apps/widgets", None, {}, True, 404, "NotFound"),
        ("POST", "/apis/example.com/v1/widgets", b"{}", JSON, True, 404, "NotFound"),
    ],
    ids=[
        "truncated-json",
        "binary-as-json",
        "bad-protobuf",
        "protobuf-without-magic",
        "over-size-limit",
        "no-credential",
        "wrong-credential",
        "unknown-kind",
        "unknown-group",
    ],
)
def test_bad_requests_get_a_status_and_change_nothing(
    api: Api, method: str, path: str, body: bytes | None, headers: dict[str, str], secret: bool,
    code: int, reason: str,
) -> None:  # fmt: skip
    before = api.snapshot()
    assert_status(api.request(method, path, body, headers, secret), code, reason)
    assert api.snapshot() == before, "a refused request changed the store"
    status, _, listed = api.request("GET", "/api/v1/namespaces/apps/configmaps")
    assert status == 200 and [i["metadata"]["name"] for i in listed["items"]] == ["kept"]


def test_a_chunked_body_over_the_limit_is_413(api: Api) -> None:
    before = api.snapshot()
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    chunks = (b" " * 65536 for _ in range(MAX_BODY_BYTES // 65536 + 2))
    conn.request("POST", api.prefix + PODS, chunks, JSON, encode_chunked=True)
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 413 and body["reason"] == "RequestEntityTooLarge", body
    assert body["message"] == f"Request entity too large: limit is {MAX_BODY_BYTES}"
    assert api.snapshot() == before


def test_a_watch_whose_client_vanished_is_closed(api: Api) -> None:
    store = api.server.stores["east"]
    before = store.watch_count
    sock = socket.create_connection(("127.0.0.1", api.port))
    sock.sendall(f"GET {api.prefix}{PODS}?watch=true HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    wait_for(lambda: store.watch_count == before + 1, what="the watch opened")
    sock.close()  # gone without a word, no event will ever be written to it
    wait_for(lambda: store.watch_count == before, timeout=10, what="the watch closed")


def test_beyond_the_inflight_limit_is_429_with_retry_after(api: Api) -> None:
    inflight = api.server.apis["east"].inflight
    inflight.mutating_limit = 2
    stalled = []
    try:
        for _ in range(2):  # two writes whose bodies never finish arriving hold both slots
            sock = socket.create_connection(("127.0.0.1", api.port))
            sock.sendall(
                f"POST {api.prefix}{PODS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                "\r\nContent-Length: 100\r\n\r\n{".encode()
            )
            stalled.append(sock)
        wait_for(lambda: inflight.writes == 2, what="two writes in flight")
        answer = api.request("POST", PODS, b"{}", JSON)
        assert_status(answer, 429, "TooManyRequests")
        assert answer[1]["Retry-After"] == "1" and answer[2]["details"]["retryAfterSeconds"] == 1
        assert api.request("GET", PODS)[0] == 200, "reads have their own pool"
    finally:
        for sock in stalled:
            sock.close()
        wait_for(lambda: inflight.writes == 0, what="the stalled writes released")
        inflight.mutating_limit = 200
    assert api.request("POST", "/api/v1/namespaces/apps/configmaps",
                       json.dumps(configmap("after-429")).encode(), JSON)[0] == 201  # fmt: skip


async def _load(port: int, clients: int) -> tuple[list[float], list[int]]:
    """`clients` clients at once, each creating its configmap, reading it and listing."""
    base = f"http://127.0.0.1:{port}/s/{SECRET}/api/v1/namespaces/apps/configmaps"
    latencies: list[float] = []
    codes: list[int] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def timed(method: str, url: str, **kw: Any) -> None:
            started = time.perf_counter()
            async with session.request(method, url, **kw) as resp:
                await resp.read()
                codes.append(resp.status)
            latencies.append(time.perf_counter() - started)

        async def client(i: int) -> None:
            await timed("POST", base, json=configmap(f"load-{i}", f"value-{i}"))
            await timed("GET", f"{base}/load-{i}")
            await timed("GET", base)

        await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, codes


def test_200_concurrent_clients_are_all_served_and_nothing_is_lost(api: Api) -> None:
    latencies, codes = asyncio.run(_load(api.port, CLIENTS))
    assert len(codes) == 3 * CLIENTS
    assert sorted(set(codes)) == [200, 201], codes
    objects, _ = api.snapshot()
    stored = {name: obj["data"] for (_, name), obj in objects["ConfigMap"].items()}
    for i in range(CLIENTS):
        assert stored[f"load-{i}"] == {"key": f"value-{i}"}
    assert stored["kept"] == {"key": "v"}
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"{len(codes)} requests, 0 errors, p99 {p99 * 1000:.0f} ms at {CLIENTS} clients")
