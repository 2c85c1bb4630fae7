"""Region x region matrices read from outcome-file case records (pure): what the terminal's
grids and the report's heatmaps both draw."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reports.baseline import quantile

Record = Mapping[str, Any]


def ends(pair: str) -> tuple[str, str]:
    src, _, dst = pair.partition("->")
    return src, dst


@dataclass
class Matrix:
    """Cells keyed by (source, destination) region, in the topology's order."""

    title: str
    rows: list[str]
    cols: list[str]
    cells: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    """value (0..1 for pass rates, the number otherwise) and its text."""
    bad: set[tuple[str, str]] = field(default_factory=set)
    """Cells with a failure (drawn red whatever their value)."""

    def __bool__(self) -> bool:
        return bool(self.cells)


def _order(names: Iterable[str], regions: Sequence[str]) -> list[str]:
    found = set(names)
    known = [r for r in regions if r in found]
    return known + sorted(found - set(known))


def pass_matrix(title: str, cases: Sequence[Record], regions: Sequence[str]) -> Matrix:
    """passed/run per ordered region pair (cases not run left out)."""
    counts: dict[tuple[str, str], list[int]] = {}
    for case in cases:
        if case["passed"] is None:
            continue
        row = counts.setdefault(ends(case["pair"]), [0, 0])
        row[0] += bool(case["passed"])
        row[1] += 1
    matrix = Matrix(
        title,
        _order((s for s, _ in counts), regions),
        _order((d for _, d in counts), regions),
    )
    for key, (ok, total) in counts.items():
        matrix.cells[key] = (ok / total, f"{ok}/{total}")
        if ok < total:
            matrix.bad.add(key)
    return matrix


def loss_matrix(cases: Sequence[Record], regions: Sequence[str]) -> Matrix:
    """Pooled ping loss per ordered region pair (%)."""
    sums: dict[tuple[str, str], list[float]] = {}
    for case in cases:
        numbers = case["numbers"]
        if "ping_sent" in numbers:
            row = sums.setdefault(ends(case["pair"]), [0.0, 0.0])
            row[0] += numbers["ping_sent"]
            row[1] += numbers["ping_sent"] - numbers["ping_received"]
    matrix = Matrix(
        "ping loss %", _order((s for s, _ in sums), regions), _order((d for _, d in sums), regions)
    )
    for key, (sent, lost) in sums.items():
        rate = lost / sent if sent else 1.0
        matrix.cells[key] = (rate, f"{100 * rate:.1f}")
        if lost:
            matrix.bad.add(key)
    return matrix


def latency_matrix(
    cases: Sequence[Record], regions: Sequence[str], name: str = "rtt_ms", q: float = 0.5
) -> Matrix:
    """A latency quantile per ordered region pair (ms), starved timings left out."""
    samples: dict[tuple[str, str], list[float]] = {}
    for case in cases:
        if case.get("starved"):
            continue
        values = case.get("samples", {}).get(name)
        if values is None and name in case["numbers"]:
            values = [case["numbers"][name]]
        if values:
            samples.setdefault(ends(case["pair"]), []).extend(values)
    label = {"rtt_ms": "ICMP RTT", "connect_ms": "TCP connect", "dns_ms": "DNS query"}[name]
    stat = "p50" if q == 0.5 else f"p{round(100 * q)}"
    matrix = Matrix(
        f"{label} {stat} ms",
        _order((s for s, _ in samples), regions),
        _order((d for _, d in samples), regions),
    )
    for key, values in samples.items():
        value = quantile(values, q)
        matrix.cells[key] = (value, f"{value:.2f}" if value < 10 else f"{value:.0f}")
    return matrix


def checks_with_failures(records: Iterable[Record]) -> list[Record]:
    return [r for r in records if any(c["passed"] is False for c in r["cases"])]


def all_cases(records: Iterable[Record]) -> list[Record]:
    return [c for r in records for c in r["cases"]]
