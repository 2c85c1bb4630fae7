"""Pod exec over WebSocket: the v4/v5 channel protocols (see FACTS.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Sequence
from typing import Final

from aiohttp import WSMsgType, web

from provisioning.lab.apiserver.errors import bad_request
from provisioning.lab.apiserver.model import Obj

V5_PROTOCOL: Final = "v5.channel.k8s.io"
V4_PROTOCOL: Final = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, STATUS, CLOSE = 0, 1, 2, 3, 255
CHUNK: Final = 1 << 16


def exit_code(returncode: int) -> int:
    """A shell-style exit code (128 + signal for a killed process)."""
    return 128 - returncode if returncode < 0 else returncode


def exec_status(code: int, argv: Sequence[str], message: str = "") -> Obj:
    """The channel-3 Status of a finished exec."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    text = message or (f"error executing command [{' '.join(argv)}], exit code {code}")
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {text}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def truthy(value: str | None) -> bool:
    """Query flag parsing (`true`, `1`)."""
    return (value or "").lower() in ("true", "1")


class ExecSession:
    """One exec stream: a process's pipes over the v4/v5 channel protocol."""

    def __init__(self, ws: web.WebSocketResponse, argv: list[str], stdin: bool) -> None:
        self.ws = ws
        self.argv = argv
        self.stdin = stdin
        self._send_lock = asyncio.Lock()
        self._gone = False

    async def run(self, start: Awaitable[asyncio.subprocess.Process]) -> None:
        """Start the process, stream it, report its exit and close the socket."""
        try:
            proc = await start
        except FileNotFoundError:
            await self._refuse(127, f'exec: "{self.argv[0]}": executable file not found in $PATH')
            return
        except Exception as exc:  # the exec handler could not run the command
            await self._refuse(126, f"exec failed: {exc}")
            return
        await self._stream(proc)

    async def _stream(self, proc: asyncio.subprocess.Process) -> None:
        reader = asyncio.get_running_loop().create_task(self._read_client(proc))
        try:
            if not self.stdin:
                self._close_stdin(proc)
            await asyncio.gather(self._pump(proc.stdout, STDOUT), self._pump(proc.stderr, STDERR))
            code = exit_code(await proc.wait())
            await self._send(bytes([STATUS]) + json.dumps(exec_status(code, self.argv)).encode())
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await self.ws.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _refuse(self, code: int, message: str) -> None:
        await self._send(bytes([STDERR]) + message.encode() + b"\n")
        status = exec_status(code, self.argv, message)
        await self._send(bytes([STATUS]) + json.dumps(status).encode())
        await self.ws.close()

    async def _send(self, frame: bytes) -> None:
        if self._gone:
            return
        try:
            async with self._send_lock:
                await self.ws.send_bytes(frame)
        except (ConnectionError, RuntimeError):
            self._gone = True

    async def _pump(self, stream: asyncio.StreamReader | None, channel: int) -> None:
        if stream is None:
            return
        prefix = bytes([channel])
        while chunk := await stream.read(CHUNK):
            await self._send(prefix + chunk)

    async def _read_client(self, proc: asyncio.subprocess.Process) -> None:
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY and msg.data:
                await self._on_frame(proc, msg.data[0], msg.data[1:])
            elif msg.type == WSMsgType.TEXT and msg.data:
                await self._on_frame(proc, ord(msg.data[0]), msg.data[1:].encode())
        self._gone = True
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # the client went away

    async def _on_frame(self, proc: asyncio.subprocess.Process, channel: int, data: bytes) -> None:
        if channel == STDIN and self.stdin and proc.stdin and not proc.stdin.is_closing():
            with contextlib.suppress(ConnectionError):
                proc.stdin.write(data)
                await proc.stdin.drain()
        elif channel == CLOSE and data[:1] == bytes([STDIN]):
            self._close_stdin(proc)

    @staticmethod
    def _close_stdin(proc: asyncio.subprocess.Process) -> None:
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()


def pick_container(pod: Obj, wanted: str | None) -> str:
    """The container asked for, else the default-container annotation, else the first."""
    names = [c["name"] for c in pod["spec"]["containers"]]
    if wanted:
        if wanted not in names:
            raise bad_request(f"container {wanted} is not valid for pod {pod['metadata']['name']}")
        return wanted
    annotations = pod["metadata"].get("annotations") or {}
    default = str(annotations.get("kubectl.kubernetes.io/default-container", ""))
    return default if default in names else names[0]
