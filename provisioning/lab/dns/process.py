"""The daemon's side of one CoreDNS pod process (`dns.worker`): start it, feed it, read its log,
stop it by its exact pid.

`kube_objects` is what the worker's kubernetes plugin reads: a cluster's Services, Endpoints and
pod addresses, trimmed to the fields `records.lookup` uses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from netconform.errors import LabError
from provisioning.lab.apiserver.model import BY_KIND
from provisioning.lab.dns.worker import Snapshot, frame
from provisioning.lab.processes import end, reap

log = logging.getLogger("netconform.lab.dns")
#: from spawn to serving on port 53 (a Python interpreter start on a loaded machine)
READY_TIMEOUT = 60.0
#: SIGTERM to SIGKILL
STOP_GRACE = 5.0


def kube_objects(store: Any) -> dict[str, list[dict[str, Any]]]:
    """The Services, Endpoints and Pods of `store` as the kubernetes plugin reads them."""

    def meta(obj: dict[str, Any]) -> dict[str, str]:
        return {"namespace": obj["metadata"]["namespace"], "name": obj["metadata"]["name"]}

    return {
        "Service": [
            {"metadata": meta(s), "spec": s["spec"]} for s in store.select(BY_KIND["Service"], None)
        ],
        "Endpoints": [
            {
                "metadata": meta(e),
                "subsets": [
                    {"addresses": [{"ip": a["ip"]} for a in s.get("addresses") or []]}
                    for s in e.get("subsets") or []
                ],
            }
            for e in store.select(BY_KIND["Endpoints"], None)
        ],
        "Pod": [
            {"metadata": meta(p), "status": {"podIP": p["status"]["podIP"]}}
            for p in store.select(BY_KIND["Pod"], None)
            if (p.get("status") or {}).get("podIP")
        ],
    }


def config_frame(snapshot: Snapshot, reload: bool) -> bytes:
    return frame(("config", snapshot, reload))


def objects_frame(objects: dict[str, list[dict[str, Any]]]) -> bytes:
    return frame(("objects", objects))


class PodProcess:
    """One DNS pod's server process."""

    def __init__(
        self,
        netns: str,
        ip: str,
        on_log: Callable[[str], None],
        on_crash: Callable[[str, int], None],
    ) -> None:
        self.netns, self.ip = netns, ip
        self.on_log, self.on_crash = on_log, on_crash
        self.proc: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    async def start(
        self, first: Callable[[], bytes], procs: set[asyncio.subprocess.Process]
    ) -> None:
        """Spawn the worker, send it `first()` (objects, then the configuration, read once the
        process exists so no later change is missed), wait until it serves."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "provisioning.lab.dns.worker",
            self.netns,
            self.ip,
            str(os.getpid()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )  # this interpreter finds this clone's code (its editable install), as the daemon did
        procs.add(self.proc)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.send(first())
        waiter = asyncio.ensure_future(self._ready.wait())
        done, _ = await asyncio.wait(
            {waiter, self._reader}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            self.close()
            raise LabError(
                f"the DNS server of {self.netns} did not serve within {READY_TIMEOUT:g} s "
                f"(READY_TIMEOUT)"
            )

    def send(self, data: bytes) -> None:
        """A frame to the worker (dropped when it is gone)."""
        if self.proc is None or self.proc.stdin is None or self.proc.stdin.is_closing():
            return
        self.proc.stdin.write(data)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "ready" in message:
                self._ready.set()
            elif "log" in message:
                self.on_log(str(message["log"]))
            elif "crash" in message:
                self.on_crash(str(message["crash"]), int(message.get("generation", 0)))

    def close(self) -> None:
        """SIGTERM to this exact pid, SIGKILL after STOP_GRACE (in the background)."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        end(proc, STOP_GRACE)

    async def wait(self, timeout: float) -> None:
        """Until the process has ended (killed after `timeout`)."""
        if self.proc is not None:
            await reap(self.proc, timeout)
