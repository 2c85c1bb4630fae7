"""Load on a running lab's cluster DNS: how long its answers take, and how many never come.

A benchmark, not a test: it prints figures. From inside one pod's network namespace (by its
netns name, as `ip netns list` shows it) it sends QUERIES A lookups of NAME to SERVER, at most
CONCURRENCY in flight at once (UDP, dnspython, a TIMEOUT each, as dig's `+time=2 +tries=1`),
and prints the latency percentiles and the count of timeouts. Run it beside a conformance run
to see what the probe pods' lookups meet.

    sudo .venv/bin/python benchmarks/dns_load.py NETNS SERVER NAME [--queries 400]
                                                 [--concurrency 40] [--timeout 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioning.lab.nsenter import in_netns


async def one(server: str, name: str, timeout: float) -> tuple[float, str]:
    query = dns.message.make_query(name, "A")
    start = time.perf_counter()
    try:
        reply = await dns.asyncquery.udp(query, server, timeout=timeout)
    except dns.exception.Timeout:
        return time.perf_counter() - start, "TIMEOUT"
    return time.perf_counter() - start, dns.rcode.to_text(reply.rcode())


async def load(server: str, name: str, queries: int, concurrency: int, timeout: float) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def gated() -> tuple[float, str]:
        async with gate:
            return await one(server, name, timeout)

    start = time.perf_counter()
    results = await asyncio.gather(*(gated() for _ in range(queries)))
    wall = time.perf_counter() - start
    answered = sorted(t for t, rc in results if rc != "TIMEOUT")
    rcodes: dict[str, int] = {}
    for _, rc in results:
        rcodes[rc] = rcodes.get(rc, 0) + 1

    def pct(p: float) -> str:
        if not answered:
            return "-"
        return f"{answered[min(len(answered) - 1, int(p * len(answered)))] * 1000:.1f}"

    median = f"{statistics.median(answered) * 1000:.1f}" if answered else "-"
    print(
        f"{queries} queries, {concurrency} at once: wall {wall:.2f} s "
        f"({queries / wall:.0f}/s); ms p50 {median} p90 {pct(0.9)} p99 {pct(0.99)} "
        f"max {pct(1.0)}; {rcodes}; load {Path('/proc/loadavg').read_text().split()[0]}"
    )


async def trace(server: str, name: str, seconds: float, timeout: float) -> None:
    """Back-to-back single queries; per second: count, worst latency, timeouts."""
    start = time.perf_counter()
    second, worst, count, lost = 0, 0.0, 0, 0
    all_times: list[float] = []
    total_lost = 0
    while (now := time.perf_counter() - start) < seconds:
        if int(now) != second:
            print(
                f"t={second:4d}s n={count:4d} worst {worst * 1000:7.1f} ms lost {lost}", flush=True
            )
            second, worst, count, lost = int(now), 0.0, 0, 0
        took, rc = await one(server, name, timeout)
        count += 1
        worst = max(worst, took)
        all_times.append(took)
        if rc == "TIMEOUT":
            lost += 1
            total_lost += 1
    all_times.sort()
    print(
        f"trace: {len(all_times)} queries, p50 {statistics.median(all_times) * 1000:.1f} ms, "
        f"p99 {all_times[int(0.99 * len(all_times))] * 1000:.1f} ms, "
        f"over 1 s: {sum(t > 1 for t in all_times)}, timeouts {total_lost}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("netns")
    parser.add_argument("server")
    parser.add_argument("name")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--trace",
        type=float,
        metavar="SECONDS",
        help="instead: one query after another for SECONDS, printing each second's worst",
    )
    args = parser.parse_args()
    with in_netns(args.netns):  # the event loop's sockets are made in the pod's namespace
        if args.trace:
            asyncio.run(trace(args.server, args.name, args.trace, args.timeout))
            return 0
        for _ in range(args.repeat):
            asyncio.run(load(args.server, args.name, args.queries, args.concurrency, args.timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
