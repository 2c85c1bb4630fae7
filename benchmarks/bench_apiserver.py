"""The lab's API server under load: CLIENTS clients at once (default 200), for ROUNDS rounds
(default 5), against one cluster served by a process of its own (as the daemon serves it).

Each client per round: create its ConfigMap, read it, list the namespace, then one bad request
(a truncated JSON body, a missing credential, an unknown kind or a body over the size limit, in
turn), which must be refused with its status. Afterwards every ConfigMap is read back and
compared. Prints JSON: requests served (the server's count), unexpected answers, p50/p99
latency of the good requests, and wall time.

    python benchmarks/bench_apiserver.py [CLIENTS] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from provisioning.lab.apiserver import ClusterSpec, LabApiServer  # noqa: E402
from provisioning.lab.apiserver.limits import MAX_BODY_BYTES  # noqa: E402
from provisioning.lab.apiserver.model import NodeSpec  # noqa: E402
from provisioning.lab.controllers import CONTROLLERS  # noqa: E402

SECRET = "bench-apiserver-secret-0123456789"
NODES = (NodeSpec("east-node-0", "10.101.0.10", {}, "10.101.1.0/24"),)


async def no_exec(*args: Any) -> asyncio.subprocess.Process:
    raise NotImplementedError("the benchmark runs no pods")


async def no_log(*args: Any) -> str:
    return ""


def serve(pipe: Connection) -> None:
    """The child: one cluster's API server until the parent says stop."""

    async def main() -> None:
        spec = ClusterSpec("east", 0, NODES, "10.201.0.0/16", namespaces=("apps",), secret=SECRET)
        server = LabApiServer([spec], no_exec, no_log, CONTROLLERS)
        ports = await server.start()
        pipe.send(ports["east"])
        await asyncio.to_thread(pipe.recv)
        api = server.apis["east"]
        pipe.send({"served": api.served, "refused_429": api.inflight.refused})
        await server.stop()

    asyncio.run(main())


BAD: list[tuple[str, str, bytes, dict[str, str], bool, int]] = [
    ("POST", "/configmaps", b'{"metadata": ', {"Content-Type": "application/json"}, True, 400),
    ("GET", "/configmaps", b"", {}, False, 401),
    ("GET", "/widgets", b"", {}, True, 404),
    ("POST", "/configmaps", b" " * (MAX_BODY_BYTES + 1), {"Content-Type": "application/json"},
     True, 413),
]  # fmt: skip


async def load(port: int, clients: int, rounds: int) -> dict[str, Any]:
    root = f"http://127.0.0.1:{port}"
    good = f"{root}/s/{SECRET}/api/v1/namespaces/apps"
    latencies: list[float] = []
    by_verb: dict[str, list[float]] = {"create": [], "get": [], "list": []}
    unexpected: list[str] = []
    bad_answers = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:

        async def timed(verb: str, method: str, url: str, expect: int, **kw: Any) -> None:
            started = time.perf_counter()
            async with session.request(method, url, **kw) as resp:
                await resp.read()
                if resp.status != expect:
                    unexpected.append(f"{method} {url[len(root) :][:60]}: {resp.status}")
            latencies.append(time.perf_counter() - started)
            by_verb[verb].append(latencies[-1])

        async def client(i: int, r: int) -> None:
            nonlocal bad_answers
            name = f"c{i}-r{r}"
            body = {"metadata": {"name": name}, "data": {"key": name}}
            await timed("create", "POST", f"{good}/configmaps", 201, json=body)
            await timed("get", "GET", f"{good}/configmaps/{name}", 200)
            await timed("list", "GET", f"{good}/configmaps", 200)
            method, path, data, headers, secret, code = BAD[(i + r) % len(BAD)]
            base = good if secret else f"{root}/api/v1/namespaces/apps"
            async with session.request(method, base + path, data=data, headers=headers) as resp:
                await resp.read()
                bad_answers += 1
                if resp.status != code:
                    unexpected.append(f"bad {path}: {resp.status}, expected {code}")

        started = time.perf_counter()
        for r in range(rounds):
            await asyncio.gather(*(client(i, r) for i in range(clients)))
        wall = time.perf_counter() - started
        lost = []
        for r in range(rounds):
            for i in range(clients):
                async with session.get(f"{good}/configmaps/c{i}-r{r}") as resp:
                    data = (await resp.json()).get("data") if resp.status == 200 else None
                    if data != {"key": f"c{i}-r{r}"}:
                        lost.append(f"c{i}-r{r}")
    latencies.sort()
    return {
        "clients": clients,
        "rounds": rounds,
        "good_requests": len(latencies),
        "refused_as_expected": bad_answers - sum(u.startswith("bad") for u in unexpected),
        "unexpected_answers": len(unexpected),
        "unexpected_examples": unexpected[:5],
        "objects_lost_or_changed": len(lost),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": p99(latencies),
        "p99_ms_by_verb": {verb: p99(values) for verb, values in by_verb.items()},
        "wall_s": round(wall, 2),
        "requests_per_s": round((len(latencies) + bad_answers) / wall, 1),
    }


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 1)


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=serve, args=(child,))
    proc.start()
    try:
        port = parent.recv()
        figures = asyncio.run(load(port, clients, rounds))
        parent.send("stop")
        figures |= parent.recv()
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
