"""DNS resolution latency per region pair, from dig's own `;; Query time:` of each case."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from netconform.outcomes import Case
from netconform.probes.dns import query_time_ms

LATENCY_HEADER = ("from", "zone of", "lookups", "median ms", "max ms", "failed")


def latency_rows(
    cases: Sequence[Case], regions: Sequence[str]
) -> tuple[tuple[tuple[object, ...], ...], tuple[bool, ...]]:
    """One row per (asking cluster, cluster whose zone was asked) that has dns cases."""
    rows: list[tuple[object, ...]] = []
    bad: list[bool] = []
    for src in regions:
        for dst in regions:
            pair = [
                c
                for c in cases
                if c.protocol == "dns" and c.source.cluster == src and c.destination.cluster == dst
            ]
            if not pair:
                continue
            times = [
                t for t in (query_time_ms(c.raw.stdout) for c in pair if c.raw) if t is not None
            ]
            failed = sum(not c.passed for c in pair)
            median = f"{statistics.median(times):g}" if times else "-"
            rows.append((src, dst, len(pair), median, max(times) if times else "-", failed))
            bad.append(failed > 0)
    return tuple(rows), tuple(bad)
