"""One CoreDNS pod as its own process, as on a real node: `python -m provisioning.lab.dns.worker
NETNS IP OWNER_PID`, started and stopped by exact pid by the cluster-dns controller.

It serves `server.PodServer` (UDP and TCP port 53 inside the pod's network namespace) on an
event loop of its own, so a busy lab daemon (API servers, controllers, echo servers) no longer
delays DNS answers, and each pod competes for the CPU as a process, as CoreDNS does.

What it answers from comes from the daemon on stdin, in frames (4-byte big-endian length, then
a pickle; both ends are this repository's code over a private pipe):

- `("config", Snapshot, reload)`: the cluster's server blocks, the lab's networks and the
  `dns-down` flag; `reload` true after a Corefile/stubDomains change (the reload plugin: a
  crashed pod restarts with it, the loop plugin probes again);
- `("objects", {kind: [object, ...]})`: the Services, Endpoints and Pods the kubernetes plugin
  reads, trimmed to the fields it uses (as CoreDNS keeps its informers' cache).

It writes one JSON object a line on stdout: `{"ready": true}` once it serves, `{"log": line}`
for its container log, `{"crash": line, "generation": n}` when the loop plugin halts it.
It exits when stdin closes or its owner (the daemon) is gone (PR_SET_PDEATHSIG as well).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import pickle
import signal
import struct
import sys
from dataclasses import dataclass
from typing import Any

from provisioning.lab.dns.server import ClusterConfig, PodServer

PR_SET_PDEATHSIG = 1
HEADER = struct.Struct("!I")


@dataclass(frozen=True)
class Snapshot:
    """The picklable part of a `ClusterConfig` (its objects come in their own frames)."""

    blocks: tuple[Any, ...]
    lab_networks: tuple[Any, ...]
    down: bool
    generation: int


def frame(message: object) -> bytes:
    """One message as the worker reads it."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


class Worker:
    def __init__(self, netns: str, ip: str) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {}
        self.config = ClusterConfig((), self.lister, ())
        self.server = PodServer(netns, ip, lambda: self.config, self.log, self.crash)
        self.started = False

    def lister(self, kind: str) -> list[dict[str, Any]]:
        return self.objects.get(kind, [])

    @staticmethod
    def emit(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    def log(self, line: str) -> None:
        self.emit({"log": line})

    def crash(self, line: str) -> None:
        self.emit({"crash": line, "generation": self.config.generation})

    def apply(self, message: tuple[Any, ...]) -> None:
        if message[0] == "objects":
            self.objects = message[1]
        elif message[0] == "config":
            snapshot: Snapshot = message[1]
            self.config = ClusterConfig(
                snapshot.blocks,
                self.lister,
                snapshot.lab_networks,
                snapshot.down,
                snapshot.generation,
            )
            if message[2] and self.started:
                self.server.reloaded()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**26)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while True:
                (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
                self.apply(pickle.loads(await reader.readexactly(size)))
                if not self.started and self.config.generation:  # the first configuration
                    await self.server.start()  # reloaded(): the loop plugin's first probes
                    self.started = True
                    self.emit({"ready": True})
        except asyncio.IncompleteReadError:
            pass  # the daemon closed the pipe: the pod is gone
        finally:
            self.server.close()


def main(argv: list[str]) -> int:
    netns, ip, owner = argv[0], argv[1], int(argv[2])
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != owner:
        return 1  # the daemon went before the guard was set
    asyncio.run(Worker(netns, ip).run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
