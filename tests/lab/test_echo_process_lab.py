"""A node's echo servers as a process of their own (`echo.worker`, `echo.process.NodeEcho`):
it answers on the sockets the daemon bound in a pod's namespace (TCP lines, HTTP, UDP), its log
lines come back per pod, a pod it forgets stops accepting, a worker killed by hand is started
again and serves the same sockets, and it is gone by its exact pid when closed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import Iterator

import pytest

from provisioning.lab.echo.answers import Identity
from provisioning.lab.echo.process import NodeEcho
from provisioning.lab.nsenter import bind_udp, in_netns, listen_tcp
from tests.lab.scratch import eventually, scratch_netns

NETNS = f"nctecho{os.getpid()}"
ANSWER_TIMEOUT = 5.0
"""Seconds for one answer (or a refusal) of the worker (generous for a busy machine)."""
WHO = Identity("web-1", "east", "east-node-0", "east", "lab-east", "10.201.1.5", "canary")


@pytest.fixture
def netns() -> Iterator[str]:
    with scratch_netns(NETNS) as name:
        yield name


def client(kind: int) -> socket.socket:
    with in_netns(NETNS):
        sock = socket.socket(socket.AF_INET, kind)
    sock.settimeout(ANSWER_TIMEOUT)
    return sock


def ask_tcp(port: int, request: bytes) -> bytes:
    with client(socket.SOCK_STREAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def ask_udp(port: int) -> bytes:
    with client(socket.SOCK_DGRAM) as sock:
        sock.sendto(b"hi\n", ("127.0.0.1", port))
        return sock.recv(65536)


def test_a_node_process_answers_logs_restarts_forgets_and_stops(netns: str) -> None:
    async def scenario() -> None:
        logs: list[tuple[str, str]] = []
        procs: set[asyncio.subprocess.Process] = set()
        node = NodeEcho("lab-east/east-node-0", lambda ns, line: logs.append((ns, line)), procs)
        await node.start()
        first_pid = node.pid
        assert first_pid != os.getpid() and node.proc in procs
        tcp = [(8080, listen_tcp(netns, 8080)), (9092, listen_tcp(netns, 9092))]
        node.serve(netns, WHO, tcp, [(5353, bind_udp(netns, 5353))])
        try:
            line = json.loads(await asyncio.to_thread(ask_tcp, 9092, b"ping\n"))
            assert line["pod"] == "web-1" and line["port"] == 9092 and line["client"] == "127.0.0.1"
            http = await asyncio.to_thread(ask_tcp, 8080, b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
            head, _, body = http.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK") and b"X-Echo-Track: canary" in head
            answer = json.loads(body)
            assert answer | {"path": "/x", "host": "h", "track": "canary"} == answer
            assert json.loads(await asyncio.to_thread(ask_udp, 5353))["port"] == 5353

            async def logged() -> bool:
                return len(logs) >= 3

            await eventually(logged, ANSWER_TIMEOUT, "ANSWER_TIMEOUT (the log lines)")
            assert {ns for ns, _ in logs} == {netns}
            assert any("-> udp/5353" in line for _, line in logs)

            os.kill(first_pid, signal.SIGKILL)  # a crash by hand: started again, same sockets

            async def restarted() -> bool:
                return node.pid != first_pid and node.proc is not None and node.proc in procs

            await eventually(restarted, 30.0, "a restarted worker")
            again = await asyncio.to_thread(ask_tcp, 9092, b"ping\n")  # queued until it serves
            assert json.loads(again)["pod"] == "web-1"

            node.forget(netns)

            async def refused() -> bool:
                try:
                    await asyncio.to_thread(ask_tcp, 9092, b"ping\n")
                except ConnectionRefusedError:
                    return True
                except ConnectionResetError:
                    return False  # waiting when its listener closed: reset, as on a node
                return False

            await eventually(refused, ANSWER_TIMEOUT, "ANSWER_TIMEOUT (a forgotten pod)")
        finally:
            pid = node.pid
            node.close()
            await node.wait(5.0)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: this exact pid is gone

    asyncio.run(scenario())
