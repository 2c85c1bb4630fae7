"""One Debian nginx per ingress controller pod, inside the pod's network namespace.

nginx runs as the init of a PID namespace of its own (`unshare --pid --fork --kill-child`),
under a wrapper with a parent-death signal: when the lab daemon dies, however it dies, the
wrapper is killed, its child (the master) with it, and the kernel then kills every worker of
the namespace. So no nginx outlives its lab, and the lab signals exactly the processes it
started (the master by its host pid, found as the wrapper's child), never by name.

A configuration is tested (`nginx -t`) before it replaces the live one, and applied with
SIGHUP: the master starts workers with the new configuration and lets the old ones finish
the requests they are serving, so a reload drops nothing. The controller then polls the
pod's status port until the new generation answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from netconform.errors import LabError, WaitTimeoutError
from netconform.waits import wait_until
from provisioning.lab.ingress.nginxconf import GENERATION_PATH, STATUS_PORT
from provisioning.lab.nsenter import in_netns
from provisioning.lab.processes import reap

START_TIMEOUT = 10.0
RELOAD_TIMEOUT = 3.0
"""The issue's bound: a change is served within 3 s."""
STOP_GRACE = 5.0
_ERROR_LINE = re.compile(r"\s+in (\S+):(\d+)\s*$")
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class ConfigVerdict:
    """What `nginx -t` said of a configuration."""

    ok: bool
    message: str
    """nginx's first [emerg] line, without the file path ("" when ok)."""
    line: int = 0
    """The line of the configuration it names (0: none)."""


def prepare(root: Path) -> None:
    """The folders one pod's nginx writes to."""
    for sub in ("certs", *(f"tmp/{d}" for d in TEMP_DIRS)):
        (root / sub).mkdir(parents=True, exist_ok=True)


async def check_config(root: Path, text: str, name: str = "nginx.conf.test") -> ConfigVerdict:
    """Write `text` to `root/name` and run `nginx -t` on it (nothing is bound or started)."""
    path = root / name
    path.write_text(text)
    proc = await asyncio.create_subprocess_exec(
        "nginx",
        "-q",
        "-t",
        "-p",
        str(root),
        "-c",
        str(path),
        "-e",
        str(root / "test.log"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode == 0:
        return ConfigVerdict(True, "")
    lines = [ln for ln in err.decode(errors="replace").splitlines() if "[emerg]" in ln]
    first = lines[0] if lines else (err.decode(errors="replace").strip() or "nginx -t failed")
    found = _ERROR_LINE.search(first)
    line = int(found.group(2)) if found and found.group(1) == str(path) else 0
    message = _ERROR_LINE.sub("", first.split("[emerg]", 1)[-1]).strip()
    return ConfigVerdict(False, message, line)


class PodNginx:
    """The nginx of one controller pod."""

    def __init__(self, netns: str, root: Path, label: str) -> None:
        self.netns = netns
        self.root = root
        self.label = label
        self.generation = 0
        self._wrapper: asyncio.subprocess.Process | None = None
        self._master = 0

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def running(self) -> bool:
        return self._wrapper is not None and self._wrapper.returncode is None

    async def start(self, text: str, generation: int) -> None:
        """Write `text` (already tested) and start nginx on it; LabError if it does not
        serve `generation` within START_TIMEOUT."""
        prepare(self.root)
        self.conf.write_text(text)
        self._wrapper = await asyncio.create_subprocess_exec(
            "ip",
            "netns",
            "exec",
            self.netns,
            "setpriv",
            "--pdeathsig",
            "KILL",
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            "nginx",
            "-p",
            str(self.root),
            "-c",
            str(self.conf),
            "-e",
            str(self.root / "error.log"),
            "-g",
            "daemon off;",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.to_thread(self._await_generation, generation, START_TIMEOUT, "start")
        except LabError:
            await self.stop()
            raise
        self.generation = generation

    async def reload(self, text: str, generation: int) -> None:
        """Swap in `text` (already tested) and SIGHUP the master; returns once `generation`
        answers (LabError after RELOAD_TIMEOUT, with nginx's error log's last line)."""
        if not self.running:
            raise LabError(f"{self.label}: nginx is not running")
        tmp = self.conf.with_suffix(".new")
        tmp.write_text(text)
        tmp.replace(self.conf)  # nginx re-reads the file on SIGHUP: never half a file
        master = self.master_pid()
        old_workers = _children(master)
        os.kill(master, signal.SIGHUP)
        await asyncio.to_thread(self._await_generation, generation, RELOAD_TIMEOUT, "reload")
        # the new workers answer; the old ones accept until they are told to shut down
        await asyncio.to_thread(self._await_retired, old_workers)
        self.generation = generation

    async def stop(self) -> None:
        """Graceful stop (SIGQUIT), then the wrapper killed; idempotent."""
        wrapper, self._wrapper = self._wrapper, None
        if wrapper is None or wrapper.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, LabError):
            os.kill(self.master_pid(wrapper), signal.SIGQUIT)
        await reap(wrapper, STOP_GRACE)

    def master_pid(self, wrapper: asyncio.subprocess.Process | None = None) -> int:
        """The master's host pid: the wrapper's only child."""
        wrapper = wrapper or self._wrapper
        if wrapper is None:
            raise LabError(f"{self.label}: nginx is not running")
        if not self._master or not Path(f"/proc/{self._master}").exists():
            children = Path(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children")
            try:
                pids = children.read_text().split()
            except OSError:
                pids = []
            if not pids:
                raise LabError(f"{self.label}: nginx's master process is not running")
            self._master = int(pids[0])
        return self._master

    def served_generation(self) -> int:
        """The generation the pod's nginx answers on its status port (-1: no answer)."""
        try:
            with in_netns(self.netns):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            with sock:
                sock.settimeout(1.0)
                sock.connect(("127.0.0.1", STATUS_PORT))
                sock.sendall(f"GET {GENERATION_PATH} HTTP/1.0\r\n\r\n".encode())
                reply = b""
                while chunk := sock.recv(4096):
                    reply += chunk
        except OSError:
            return -1
        body = reply.split(b"\r\n\r\n", 1)[-1].strip()
        return int(body) if body.isdigit() else -1

    def _await_retired(self, workers: list[int]) -> None:
        """Until none of `workers` accepts connections any more: each has exited, or set its
        title to "worker process is shutting down", which nginx does just before it closes
        its listening sockets (ngx_worker_process_cycle); it goes on serving what it has."""

        def retired() -> bool:
            return all(_shutting_down(pid) for pid in workers)

        try:
            wait_until(
                retired,
                timeout=RELOAD_TIMEOUT,
                name="ingress_reload",
                interval=0.005,
                max_interval=0.05,
            )
        except WaitTimeoutError as err:
            raise LabError(f"{self.label}: old nginx workers still accept: {err}") from None

    def _await_generation(self, generation: int, timeout: float, what: str) -> None:
        def serving() -> bool:
            if self._wrapper is None:  # stopped meanwhile (the lab is going down)
                raise LabError(f"{self.label}: nginx was stopped during {what}")
            if self._wrapper.returncode is not None:
                raise LabError(f"{self.label}: nginx exited during {what}: {self.last_error()}")
            return self.served_generation() == generation

        try:
            wait_until(
                serving, timeout=timeout, name=f"ingress_{what}", interval=0.01, max_interval=0.1
            )
        except WaitTimeoutError as err:
            raise LabError(f"{self.label}: {err}; nginx says: {self.last_error()}") from None

    def last_error(self) -> str:
        """The last [emerg]/[alert]/[error] line of the pod's nginx error log."""
        try:
            lines = (self.root / "error.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no error log"
        bad = [ln for ln in lines if re.search(r"\[(emerg|alert|crit|error)\]", ln)]
        return (bad or lines or ["nothing logged"])[-1][-300:]


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _shutting_down(pid: int) -> bool:
    """An nginx worker that has exited or stopped accepting (its process title says so)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return not title or b"shutting down" in title or b"worker process" not in title
