"""The run drawn as images (matplotlib, Agg: no display), for the report's global attachments:
a region x region heatmap per check, ping loss and RTT, policy truth tables, measured shares
with their intervals, and the topology with each peering coloured by the worst outcome
between its two regions. Every figure fits a screen (about 900 x 700 px)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from reports.matrices import Matrix, ends, latency_matrix, loss_matrix, pass_matrix

Record = Mapping[str, Any]
DPI = 100
RED, ORANGE, GREEN, GREY = "#d62728", "#ff7f0e", "#2ca02c", "#bbbbbb"
_PASS = LinearSegmentedColormap.from_list("pass", [RED, ORANGE])
"""Pass rates below 1: red (none passed) to orange (almost all); all passed is green."""
_BAD = LinearSegmentedColormap.from_list("bad", ["#f4fbf4", ORANGE, RED])
_TRUTH = LinearSegmentedColormap.from_list("truth", [RED, GREY, GREEN])


def png(figure: Figure, tight: bool = True) -> bytes:
    """`tight` crops to the drawing (a second layout pass: left out for many panels)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(figure)
    return buffer.getvalue()


def heatmap(ax: Axes, matrix: Matrix, higher_is_better: bool = True, top: float = 1.0) -> None:
    """Cells coloured by value (pass rate: red to green; loss, latency: light to red), the
    value written in each, failures marked; empty cells grey."""
    ax.set_title(matrix.title, fontsize=10, loc="left")
    rows, cols = matrix.rows, matrix.cols
    if not rows or not cols:  # nothing measured (no RTT where every ping was lost)
        ax.text(0.5, 0.5, "nothing measured", ha="center", va="center", fontsize=8)
        ax.set_axis_off()
        return
    cmap = _PASS if higher_is_better else _BAD
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            cell = matrix.cells.get((row, col))
            if cell is None:
                colour: Any = GREY
            elif higher_is_better and (row, col) not in matrix.bad:
                colour = GREEN
            else:
                colour = cmap(min(1.0, cell[0] / top) if top else 0.0)
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=colour, edgecolor="white"))
            if cell is not None:
                mark = " ✗" if (row, col) in matrix.bad and higher_is_better else ""
                ax.text(j + 0.5, i + 0.5, cell[1] + mark, ha="center", va="center", fontsize=8)
    ax.set_xlim(0, len(cols))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks([j + 0.5 for j in range(len(cols))], cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks([i + 0.5 for i in range(len(rows))], rows, fontsize=8)
    ax.set_xlabel("destination", fontsize=8)
    ax.set_ylabel("source", fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _size(n_cols: int, n_rows: int) -> tuple[float, float]:
    return min(9.0, 1.6 + 0.75 * n_cols), min(7.0, 1.4 + 0.55 * n_rows)


def check_heatmap(record: Record, regions: Sequence[str]) -> bytes | None:
    """passed/run per region pair of one check."""
    matrix = pass_matrix(f"{record['id']}: passed/run per region pair", record["cases"], regions)
    if not matrix:
        return None
    figure, ax = plt.subplots(figsize=_size(len(matrix.cols), len(matrix.rows)))
    heatmap(ax, matrix)
    return png(figure)


def loss_rtt(records: Sequence[Record], regions: Sequence[str]) -> bytes | None:
    """Ping loss, RTT p50 and RTT p99 per region pair, side by side."""
    cases = [c for r in records for c in r["cases"]]
    loss = loss_matrix(cases, regions)
    if not loss:
        return None
    p50 = latency_matrix(cases, regions, "rtt_ms", 0.5)
    p99 = latency_matrix(cases, regions, "rtt_ms", 0.99)
    width, height = _size(len(loss.cols), len(loss.rows))
    figure, axes = plt.subplots(1, 3, figsize=(min(15.0, 3 * width), height))
    heatmap(axes[0], loss, higher_is_better=False, top=0.2)
    worst = max((v for v, _ in [*p50.cells.values(), *p99.cells.values()]), default=1.0)
    heatmap(axes[1], p50, higher_is_better=False, top=max(worst, 1.0))
    heatmap(axes[2], p99, higher_is_better=False, top=max(worst, 1.0))
    figure.tight_layout()
    return png(figure)


_SHORT = {"ALLOW": "A", "TIMEOUT": "T", "REFUSED": "R", "UNREACHABLE": "U", "ERROR": "E"}


def truth_tables(record: Record, limit: int = 15) -> bytes | None:
    """A policy check's comparison grids, one panel per slice (cluster and step): sources x
    destinations, green where observed == expected, red where not, the observed verdict's
    letter in each (A allow, T timeout/drop, R refused)."""
    slices: dict[str, list[Record]] = {}
    for case in record["cases"]:
        if case["passed"] is not None:
            slices.setdefault(case["slice"], []).append(case)
    if not slices:
        return None
    keys = list(slices)[:limit]
    cols = min(5, len(keys))
    rows = math.ceil(len(keys) / cols)
    figure, axes = plt.subplots(
        rows, cols, figsize=(min(16.0, 3.2 * cols), 0.6 + 3.0 * rows), squeeze=False
    )
    for ax, key in zip(axes.flat, keys, strict=False):
        cases = slices[key]
        srcs = sorted({_short_name(c["source"]) for c in cases})
        dsts = sorted({_short_name(c["destination"]) for c in cases})
        grid = [[0.5] * len(dsts) for _ in srcs]  # grey: no case
        for case in cases:
            i = srcs.index(_short_name(case["source"]))
            j = dsts.index(_short_name(case["destination"]))
            grid[i][j] = 1.0 if case["passed"] else 0.0
            letter = _SHORT.get(case["verdict"], case["verdict"][:1])
            ax.text(j, i, letter, ha="center", va="center", fontsize=7, color="white")
        ax.imshow(grid, cmap=_TRUTH, vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(dsts)), dsts, rotation=60, ha="right", fontsize=6)
        ax.set_yticks(range(len(srcs)), srcs, fontsize=6)
        wrong = sum(not c["passed"] for c in cases)
        ax.set_title(f"{key}\n{wrong} wrong of {len(cases)}", fontsize=7, loc="left")
        ax.tick_params(length=0)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    figure.suptitle(f"{record['id']}: truth tables (A allow, T drop, R refused)", fontsize=10)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.1, top=0.9, wspace=0.7, hspace=0.95)
    return png(figure, tight=False)


def _short_name(endpoint: str) -> str:
    """`east/stars/frontend (10.101.1.9):80` -> `stars/frontend:80`."""
    name = endpoint.split(" (", 1)[0].split("/", 1)[-1]
    port = endpoint.rsplit(")", 1)[1] if ")" in endpoint else ""
    namespace, _, pod = name.partition("/")
    return (pod if pod == namespace else name) + port  # `client/client` reads `client`


def shares(record: Record) -> bytes | None:
    """Measured shares (canary) with their intervals, against the accepted interval."""
    cases = [c for c in record["cases"] if "share" in c["numbers"]]
    if not cases:
        return None
    figure, ax = plt.subplots(figsize=(8.0, min(7.0, 1.2 + 0.4 * len(cases))))
    for i, case in enumerate(cases):
        n = case["numbers"]
        expected = case.get("expected_numbers", {})
        if "share_low" in expected:
            ax.plot([expected["share_low"], expected["share_high"]], [i, i], color=GREY, lw=8,
                    solid_capstyle="butt")  # fmt: skip
        colour = GREEN if case["passed"] else RED
        low, high = n.get("share_low", n["share"]), n.get("share_high", n["share"])
        if (low, high) != (0.0, 1.0):
            ax.errorbar(n["share"], i, xerr=[[n["share"] - low], [high - n["share"]]], fmt="o",
                        color=colour, capsize=3)  # fmt: skip
        else:
            ax.plot(n["share"], i, "o", color=colour)
    ax.set_yticks(range(len(cases)), [c["id"].split(": ", 1)[-1][:60] for c in cases], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share (grey: accepted interval)")
    ax.set_title(f"{record['id']}: measured share and interval", fontsize=10, loc="left")
    return png(figure)


def topology(
    records: Sequence[Record], regions: Sequence[str], drifted: Sequence[str] = ()
) -> bytes | None:
    """Regions as nodes on a circle, a peering as an edge between two regions coloured by the
    worst outcome of every case between them (red failed, orange drift, green passed)."""
    if not regions:
        return None
    edges: dict[frozenset[str], list[int]] = {}
    inside: dict[str, list[int]] = {}
    for record in records:
        for case in record["cases"]:
            if case["passed"] is None:
                continue
            src, dst = ends(case["pair"])
            bucket = inside.setdefault(src, [0, 0]) if src == dst else edges.setdefault(
                frozenset((src, dst)), [0, 0])  # fmt: skip
            bucket[0] += not case["passed"]
            bucket[1] += 1
    drift_pairs = {frozenset(ends(p)) for p in drifted}
    names = [r for r in regions if any(r in e for e in edges) or r in inside]
    count = len(names)
    figure, ax = plt.subplots(figsize=(7.0, 6.0))
    angles = {n: 2 * math.pi * i / count + math.pi / 2 for i, n in enumerate(names)}
    spots = {n: (math.cos(a), math.sin(a)) for n, a in angles.items()}
    for pair, (bad, total) in edges.items():
        if not pair <= spots.keys() or len(pair) != 2:
            continue
        a, b = sorted(pair)
        colour = RED if bad else ORANGE if pair in drift_pairs else GREEN
        (xa, ya), (xb, yb) = spots[a], spots[b]
        ax.plot([xa, xb], [ya, yb], color=colour, lw=4 if bad else 2.5, zorder=1)
        ax.text((xa + xb) / 2, (ya + yb) / 2, f"{bad} failed / {total}" if bad else f"{total} ok",
                fontsize=8, ha="center", va="center", zorder=3,
                bbox={"facecolor": "white", "edgecolor": colour, "boxstyle": "round"})  # fmt: skip
    for name, (x, y) in spots.items():
        bad, total = inside.get(name, [0, 0])
        colour = RED if bad else GREEN if total else GREY
        ax.scatter([x], [y], s=1800, color="white", edgecolors=colour, linewidths=3, zorder=2)
        label = name + (f"\n{bad} failed inside" if bad else "")
        ax.text(x, y, label, ha="center", va="center", fontsize=9, zorder=4)
    ax.set_xlim(-1.45, 1.45)
    ax.set_ylim(-1.35, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(
        "topology: each peering coloured by the worst outcome between its regions\n"
        "(red failed, orange drift against the baseline, green passed)",
        fontsize=9,
    )
    return png(figure)
