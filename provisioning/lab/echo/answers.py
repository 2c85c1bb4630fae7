"""What an echo server answers: its pod, node, region and the client's address, as a bare JSON
line or an HTTP response to an HTTP request (`handle`), and the same line for a UDP datagram.

Pure asyncio over sockets the worker was handed: no lab state, so the worker process imports
little and starts fast."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

ECHO_READ_TIMEOUT = 2.0
HTTP_METHODS = (b"GET", b"HEAD", b"POST", b"PUT")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LogLine = Callable[[str], None]


@dataclass(frozen=True)
class Identity:
    """Who answers: the pod as its echo line reports it."""

    pod: str
    namespace: str
    node: str
    region: str
    cluster: str
    ip: str
    track: str = ""

    def line(self, port: int, client: str, request: dict[str, str] | None = None) -> str:
        answer: dict[str, object] = {
            "pod": self.pod,
            "namespace": self.namespace,
            "node": self.node,
            "region": self.region,
            "cluster": self.cluster,
            "ip": self.ip,
            "port": port,
            "client": client,
        }
        if self.track:
            answer["track"] = self.track
        if request:
            answer.update(request)
        return json.dumps(answer)


def tcp_handler(who: Identity, port: int, log: LogLine) -> Handler:
    """The TCP echo of `who` on `port`: a line for a line, an HTTP answer for a request."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = peer[0] if peer else "?"
        try:
            first = await asyncio.wait_for(reader.readline(), ECHO_READ_TIMEOUT)
        except (TimeoutError, ConnectionError):
            first = b""
        words = first.split(b" ")
        body = who.line(port, client)
        if words[0] in HTTP_METHODS:
            try:  # one timer for the whole head: a wait_for per line cost a task each
                headers = await asyncio.wait_for(_read_headers(reader), ECHO_READ_TIMEOUT)
            except (TimeoutError, ConnectionError):
                headers = {}
            body = who.line(port, client, _request(words, headers))
            writer.write(_http_head(who, len(body) + 1))
            if words[0] == b"HEAD":
                first = b""  # a HEAD answer has no body
        if first:
            writer.write(body.encode() + b"\n")
            log(f"{client} -> :{port} {first[:60]!r}")
        try:
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        except ConnectionError:
            pass

    return handle


class UdpEcho(asyncio.DatagramProtocol):
    """Answers every datagram with the pod's line (UDP has no connection to accept)."""

    def __init__(self, who: Identity, port: int, log: LogLine) -> None:
        self.who, self.port, self.log = who, port, log
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is None:
            return
        client = str(addr[0])
        self.log(f"{client} -> udp/{self.port}")
        self.transport.sendto(self.who.line(self.port, client).encode() + b"\n", addr)


def _http_head(who: Identity, length: int) -> bytes:
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n"
        f"X-Echo-Pod: {who.pod}\r\n"
        + (f"X-Echo-Track: {who.track}\r\n" if who.track else "")
        + "\r\n"
    )
    return head.encode()


def _request(words: list[bytes], headers: dict[str, str]) -> dict[str, str]:
    """What an HTTP echo reports of the request: its Host and path, and who forwarded it."""
    seen = {"method": words[0].decode(errors="replace"),
            "path": words[1].decode(errors="replace") if len(words) > 1 else "",
            "host": headers.get("host", "")}  # fmt: skip
    for name in ("x-forwarded-for", "x-real-ip", "x-forwarded-proto"):
        if name in headers:
            seen[name.replace("-", "_")] = headers[name]
    return seen


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    """The request's headers (lower-case names), up to the blank line."""
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode(errors="replace").partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
