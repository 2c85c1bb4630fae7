"""The run's grids in the terminal, drawn with rich as text: passed/run per region pair over
every check, the grid of each check that failed, ping loss and RTT per region pair."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from reports.matrices import (
    Matrix,
    all_cases,
    checks_with_failures,
    latency_matrix,
    loss_matrix,
    pass_matrix,
)


def _regions(records: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for case in all_cases(records):
        src, _, dst = str(case["pair"]).partition("->")
        seen.setdefault(src)
        seen.setdefault(dst)
    return list(seen)


def table(matrix: Matrix) -> Table:
    grid = Table(title=matrix.title, title_justify="left", show_lines=False, pad_edge=False)
    grid.add_column("from \\ to", no_wrap=True)
    for col in matrix.cols:
        grid.add_column(col, justify="right", no_wrap=True)
    for row in matrix.rows:
        cells = []
        for col in matrix.cols:
            value = matrix.cells.get((row, col))
            text = value[1] if value else "·"
            cells.append(f"{text} X" if (row, col) in matrix.bad else text)
        grid.add_row(row, *cells)
    return grid


def grids(records: Sequence[Mapping[str, Any]], width: int = 100) -> list[str]:
    """Text lines: the overall grid, each failing check's, then loss and RTT (`X`: failures)."""
    regions = _regions(records)
    matrices = [pass_matrix("passed/run, every check", all_cases(records), regions)]
    matrices += [
        pass_matrix(f"passed/run, {r['id']}", r["cases"], regions)
        for r in checks_with_failures(records)
    ]
    cases = all_cases(records)
    matrices += [loss_matrix(cases, regions), latency_matrix(cases, regions)]
    buffer = io.StringIO()
    console = Console(file=buffer, width=max(60, width), color_system=None, force_terminal=False)
    for matrix in matrices:
        if matrix:
            console.print(table(matrix))
    return buffer.getvalue().rstrip("\n").splitlines()
