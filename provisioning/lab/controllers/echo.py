"""Echo servers: every declared TCP containerPort of a pod answers with its pod, node, region
and the client's address (a bare line, or an HTTP response to an HTTP request); every declared
UDP containerPort answers each datagram with the same line.

A pod hook of the kubelet: the listeners open inside the pod's namespace once it is wired and
before the pod is reported Running, so a Running pod already serves."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, cast

from provisioning.lab.apiserver.model import Event, Obj
from provisioning.lab.controllers.base import Controller, LabContext, PodState
from provisioning.lab.controllers.cluster_dns import is_dns_pod
from provisioning.lab.controllers.ingress_nginx import is_ingress_pod
from provisioning.lab.nsenter import bind_udp, listen_tcp

ECHO_READ_TIMEOUT = 2.0
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class EchoServers(Controller):
    name: ClassVar[str] = "echo-servers"
    watches: ClassVar[frozenset[str]] = frozenset()  # driven by the kubelet's pod hooks

    def __init__(self) -> None:
        self._servers: dict[str, list[asyncio.AbstractServer]] = {}
        self._udp: dict[str, list[asyncio.BaseTransport]] = {}

    async def start(self, lab: LabContext) -> None:
        await super().start(lab)
        lab.pod_hooks.append(self)

    async def on_event(self, cluster: str, event: Event) -> None:
        """Nothing: pods come through `pod_started`."""

    async def pod_started(self, state: PodState) -> None:
        if is_dns_pod(state.spec) or is_ingress_pod(state.spec):
            return  # CoreDNS and ingress-nginx pods serve themselves (cluster_dns, ingress_nginx)
        servers = self._servers.setdefault(state.netns, [])
        for port in tcp_ports(state.spec):
            sock = listen_tcp(state.netns, port)
            servers.append(await asyncio.start_server(self._handler(state, port), sock=sock))
            state.serving.append(port)
        loop = asyncio.get_running_loop()
        for port in ports_of(state.spec, "UDP"):
            echo = functools.partial(_UdpEcho, self._udp_reply(state, port))
            transport, _ = await loop.create_datagram_endpoint(
                echo, sock=bind_udp(state.netns, port)
            )
            self._udp.setdefault(state.netns, []).append(transport)

    def pod_stopping(self, state: PodState) -> None:
        for server in self._servers.pop(state.netns, []):
            server.close()
        for transport in self._udp.pop(state.netns, []):
            transport.close()

    async def stop(self) -> None:
        for servers in self._servers.values():
            for server in servers:
                server.close()
        for transports in self._udp.values():
            for transport in transports:
                transport.close()

    def _udp_reply(self, state: PodState, port: int) -> Callable[[str], bytes]:
        region = self.lab.region(state.cluster).name

        def reply(client: str) -> bytes:
            state.log.append(f"{client} -> udp/{port}")
            return _body(state, region, port, client).encode() + b"\n"

        return reply

    def _handler(self, state: PodState, port: int) -> Handler:
        region = self.lab.region(state.cluster).name

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")
            client = peer[0] if peer else "?"
            try:
                first = await asyncio.wait_for(reader.readline(), ECHO_READ_TIMEOUT)
            except (TimeoutError, ConnectionError):
                first = b""
            words = first.split(b" ")
            body = _body(state, region, port, client)
            if words[0] in (b"GET", b"HEAD", b"POST", b"PUT"):
                try:  # one timer for the whole head: a wait_for per line cost a task each
                    headers = await asyncio.wait_for(_read_headers(reader), ECHO_READ_TIMEOUT)
                except (TimeoutError, ConnectionError):
                    headers = {}
                body = _body(state, region, port, client, _request(words, headers))
                track = track_of(state.labels)
                head = (
                    f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body) + 1}\r\nConnection: close\r\n"
                    f"X-Echo-Pod: {state.name}\r\n"
                    + (f"X-Echo-Track: {track}\r\n" if track else "")
                    + "\r\n"
                )
                writer.write(head.encode())
                if words[0] == b"HEAD":
                    first = b""  # a HEAD answer has no body
            if first:
                writer.write(body.encode() + b"\n")
                state.log.append(f"{client} -> :{port} {first[:60]!r}")
            try:
                await writer.drain()
                writer.close()
                await writer.wait_closed()
            except ConnectionError:
                pass

        return handle


class _UdpEcho(asyncio.DatagramProtocol):
    """Answers every datagram with the pod's line (UDP has no connection to accept)."""

    def __init__(self, reply: Callable[[str], bytes]) -> None:
        self.reply = reply
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(self.reply(str(addr[0])), addr)


def _body(
    state: PodState, region: str, port: int, client: str, request: dict[str, str] | None = None
) -> str:
    answer: dict[str, object] = {
        "pod": state.name,
        "namespace": state.namespace,
        "node": state.node.name,
        "region": region,
        "cluster": state.cluster,
        "ip": state.ip,
        "port": port,
        "client": client,
    }
    track = track_of(state.labels)
    if track:
        answer["track"] = track
    if request:
        answer.update(request)
    return json.dumps(answer)


def track_of(labels: dict[str, str]) -> str:
    """The pod's release track (`track: stable|canary`, the Kubernetes docs' canary label)."""
    return str(labels.get("track", ""))


def _request(words: list[bytes], headers: dict[str, str]) -> dict[str, str]:
    """What an HTTP echo reports of the request: its Host and path, and who forwarded it."""
    seen = {"method": words[0].decode(errors="replace"),
            "path": words[1].decode(errors="replace") if len(words) > 1 else "",
            "host": headers.get("host", "")}  # fmt: skip
    for name in ("x-forwarded-for", "x-real-ip", "x-forwarded-proto"):
        if name in headers:
            seen[name.replace("-", "_")] = headers[name]
    return seen


def tcp_ports(spec: Obj) -> list[int]:
    """The declared TCP containerPorts of a pod spec, sorted."""
    return ports_of(spec, "TCP")


def ports_of(spec: Obj, protocol: str) -> list[int]:
    """The declared containerPorts of a pod spec with `protocol`, sorted."""
    ports = []
    for container in spec.get("containers", []):
        for port in container.get("ports", []) or []:
            if port.get("protocol", "TCP") == protocol:
                ports.append(int(port["containerPort"]))
    return sorted(set(ports))


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    """The request's headers (lower-case names), up to the blank line."""
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode(errors="replace").partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
