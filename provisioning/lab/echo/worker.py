"""One node's echo servers as a process of their own, as a node's containers are processes
beside its kubelet: `python -m provisioning.lab.echo.worker NODE OWNER_PID CONTROL_FD`, started
and stopped by exact pid by the echo-servers controller.

The daemon binds each pod's ports inside the pod's network namespace (a listening socket queues
connections from then on) and hands the sockets over CONTROL_FD, an AF_UNIX SOCK_SEQPACKET socket:
one message per datagram, JSON, the sockets as SCM_RIGHTS ancillary data:

- `{"op": "serve", "netns": N, "identity": {...}, "tcp": [ports], "udp": [ports]}` with one
  socket per port, the TCP ones first: serve them (`answers`);
- `{"op": "stop", "netns": N}`: close that pod's sockets.

It writes one JSON object a line on stdout: `{"ready": true}` once it reads its control socket,
`{"netns": N, "log": line}` per answered connection or datagram (the pod's container log).
It exits when the control socket closes or its owner (the daemon) is gone (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import json
import os
import signal
import socket
import sys
from typing import Any

from provisioning.lab.echo.answers import Identity, UdpEcho, tcp_handler

PR_SET_PDEATHSIG = 1
#: the largest control message (a serve message is well under 1 KiB)
MESSAGE_LIMIT = 65536
#: sockets one message may carry (a pod's declared ports)
FDS_LIMIT = 256


class Worker:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.servers: dict[str, list[asyncio.AbstractServer]] = {}
        self.udp: dict[str, list[asyncio.BaseTransport]] = {}
        self.inbox: asyncio.Queue[tuple[dict[str, Any], list[socket.socket]] | None] = (
            asyncio.Queue()
        )

    @staticmethod
    def emit(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    def logger(self, netns: str) -> Any:
        return lambda line: self.emit({"netns": netns, "log": line})

    def readable(self) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(self.control, MESSAGE_LIMIT, FDS_LIMIT)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        if not data:
            self.inbox.put_nowait(None)
            return
        self.inbox.put_nowait((json.loads(data), [socket.socket(fileno=fd) for fd in fds]))

    async def serve(self, message: dict[str, Any], socks: list[socket.socket]) -> None:
        netns = str(message["netns"])
        who, log = Identity(**message["identity"]), self.logger(netns)
        loop = asyncio.get_running_loop()
        tcp, udp = list(message["tcp"]), list(message["udp"])
        for port, sock in zip(tcp, socks[: len(tcp)], strict=True):
            server = await asyncio.start_server(tcp_handler(who, port, log), sock=sock)
            self.servers.setdefault(netns, []).append(server)
        for port, sock in zip(udp, socks[len(tcp) :], strict=True):
            transport, _ = await loop.create_datagram_endpoint(
                functools.partial(UdpEcho, who, port, log), sock=sock
            )
            self.udp.setdefault(netns, []).append(transport)

    def stop(self, netns: str) -> None:
        for server in self.servers.pop(netns, []):
            server.close()
        for transport in self.udp.pop(netns, []):
            transport.close()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.control.fileno(), self.readable)
        self.emit({"ready": True})
        try:  # one message at a time, in order: a stop never overtakes its pod's serve
            while (item := await self.inbox.get()) is not None:
                message, socks = item
                if message["op"] == "serve":
                    await self.serve(message, socks)
                elif message["op"] == "stop":
                    self.stop(str(message["netns"]))
        finally:
            loop.remove_reader(self.control.fileno())
            for netns in list(self.servers) + list(self.udp):
                self.stop(netns)


def main(argv: list[str]) -> int:
    owner, control_fd = int(argv[1]), int(argv[2])
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != owner:
        return 1  # the daemon went before the guard was set
    control = socket.socket(fileno=control_fd)
    control.setblocking(False)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Worker(control).run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
