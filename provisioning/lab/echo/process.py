"""The daemon's side of one node's echo process (`echo.worker`): start it, hand it each pod's
bound sockets, read its log lines, stop it by its exact pid.

The daemon keeps its own copy of every socket it handed over, so a worker that dies is started
again and given every pod of its node back (the listening sockets queue connections meanwhile,
as a node's ports stay bound while a container restarts)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import asdict

from netconform.errors import LabError
from provisioning.lab.echo.answers import Identity
from provisioning.lab.processes import end, reap

log = logging.getLogger("netconform.lab.echo")
#: from spawn to reading its control socket (a Python interpreter start on a loaded machine)
READY_TIMEOUT = 60.0
#: a control message that cannot be written by then means the worker is stuck
SEND_TIMEOUT = 5.0
#: SIGTERM to SIGKILL
STOP_GRACE = 5.0
#: restarts of a node's worker after it died on its own, before the node is given up
RESTARTS = 5


class NodeEcho:
    """One node's echo servers process."""

    def __init__(
        self, node: str, on_log: Callable[[str, str], None], procs: set[asyncio.subprocess.Process]
    ) -> None:
        self.node, self.on_log, self.procs = node, on_log, procs
        self.proc: asyncio.subprocess.Process | None = None
        self.control: socket.socket | None = None
        self.pods: dict[str, tuple[bytes, list[socket.socket]]] = {}
        self.restarts = 0
        self.closing = False
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    async def start(self) -> None:
        """Spawn the worker and wait until it reads its control socket."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "provisioning.lab.echo.worker",
                self.node, str(os.getpid()), str(theirs.fileno()),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                pass_fds=(theirs.fileno(),),
            )  # fmt: skip
        finally:
            theirs.close()
        ours.settimeout(SEND_TIMEOUT)
        self.control = ours
        self.procs.add(self.proc)
        ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read(self.proc, ready))
        try:
            await asyncio.wait_for(asyncio.shield(ready), READY_TIMEOUT)
        except TimeoutError:
            self.close()
            raise LabError(
                f"the echo servers of node {self.node} did not start within "
                f"{READY_TIMEOUT:g} s (READY_TIMEOUT)"
            ) from None
        for message, socks in self.pods.values():  # a restart: every pod back
            self._send(message, socks)

    def serve(
        self, netns: str, who: Identity, tcp: list[tuple[int, socket.socket]],
        udp: list[tuple[int, socket.socket]],
    ) -> None:  # fmt: skip
        """Hand a pod's bound sockets to the worker (this side keeps them until `forget`)."""
        message = json.dumps(
            {"op": "serve", "netns": netns, "identity": asdict(who),
             "tcp": [port for port, _ in tcp], "udp": [port for port, _ in udp]}
        ).encode()  # fmt: skip
        socks = [sock for _, sock in tcp + udp]
        self.pods[netns] = (message, socks)
        self._send(message, socks)

    def forget(self, netns: str) -> None:
        """The pod is gone: the worker closes its sockets, and so does this side."""
        _, socks = self.pods.pop(netns, (b"", []))
        for sock in socks:
            sock.close()
        self._send(json.dumps({"op": "stop", "netns": netns}).encode(), [])

    def _send(self, message: bytes, socks: list[socket.socket]) -> None:
        if self.control is None or self.proc is None or self.proc.returncode is not None:
            return  # between a death and its restart: the restart sends every pod
        try:
            socket.send_fds(self.control, [message], [s.fileno() for s in socks])
        except (TimeoutError, BrokenPipeError, ConnectionError) as err:
            raise LabError(f"the echo servers of node {self.node} do not read: {err}") from None

    async def _read(self, proc: asyncio.subprocess.Process, ready: asyncio.Future[None]) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "ready" in message and not ready.done():
                ready.set_result(None)
            elif "log" in message:
                self.on_log(str(message.get("netns", "")), str(message["log"]))
        await proc.wait()
        self.procs.discard(proc)
        if not self.closing and proc is self.proc:
            self._died(proc.returncode)

    def _died(self, code: int | None) -> None:
        if self.restarts >= RESTARTS:
            log.error("echo servers of %s exited (%s) %d times: not restarted", self.node,
                      code, self.restarts)  # fmt: skip
            return
        self.restarts += 1
        log.warning("echo servers of %s exited (%s): restarting", self.node, code)
        if self.control is not None:
            self.control.close()
            self.control = None
        asyncio.get_running_loop().create_task(self._restart())

    async def _restart(self) -> None:
        try:
            await self.start()
        except LabError as err:
            log.error("%s", err)

    def close(self) -> None:
        """SIGTERM to this exact pid, SIGKILL after STOP_GRACE (in the background)."""
        self.closing = True
        for _, socks in self.pods.values():
            for sock in socks:
                sock.close()
        self.pods.clear()
        if self.control is not None:
            self.control.close()  # the worker's end reads EOF: it stops serving and exits
            self.control = None
        if self.proc is not None:
            end(self.proc, STOP_GRACE)

    async def wait(self, timeout: float) -> None:
        """Until the process has ended (killed after `timeout`)."""
        if self.proc is not None:
            await reap(self.proc, timeout)
