"""Results as truth tables: expected and observed over the same keys, sliced by a dimension
(region pair, zone, host), with the comparison grid and "N wrong out of M" (k8s e2e netpol)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netconform.outcomes import Case, failure_report

Key = Callable[[Case], str]


def region_pair(case: Case) -> str:
    """`east->west`: the slice of a case between two clusters."""
    return f"{case.source.cluster}->{case.destination.cluster}"


def source_cluster(case: Case) -> str:
    return case.source.cluster


def destination_cluster(case: Case) -> str:
    """The cluster a case's destination is in (its Service, its LoadBalancer)."""
    return case.destination.cluster


@dataclass(frozen=True)
class Result:
    """Every case of one measurement."""

    cases: tuple[Case, ...]
    not_supported: tuple[Case, ...] = ()
    """Cases no probe ran for (the source cannot run it); the reason is each one's detail."""
    hint: str = ""
    """The likely cause the scenario's own data explained (overrides the check's cause)."""

    @property
    def failed(self) -> tuple[Case, ...]:
        return tuple(c for c in self.cases if not c.passed)

    @property
    def unsupported_reasons(self) -> str:
        """Each distinct reason once, `; `-joined ("" when everything ran)."""
        return "; ".join(dict.fromkeys(c.detail for c in self.not_supported))

    def where(self, keep: Callable[[Case], bool]) -> Result:
        return Result(tuple(c for c in self.cases if keep(c)),
                      tuple(c for c in self.not_supported if keep(c)))  # fmt: skip

    def slice(self, key: Key, value: str) -> Result:
        """The cases whose `key` is `value` (`region_pair`, `east->west`)."""
        return self.where(lambda c: key(c) == value)

    def slices(self, key: Key) -> dict[str, Result]:
        keys = dict.fromkeys(key(c) for c in (*self.cases, *self.not_supported))
        return {k: self.slice(key, k) for k in keys}

    def report(self, cause: str = "") -> str:
        return failure_report(self.cases, cause)

    def tables(self, row: Key = lambda c: c.source.label, col: Key | None = None) -> str:
        """Expected, observed and comparison grids (`.` right, `X` wrong), N wrong out of M."""
        col = col or (lambda c: f"{c.target} {c.protocol}")
        return truth_tables(self.cases, row, col)


def _short(outcome: object) -> str:
    return str(outcome).replace(" ", "")[:7]


def truth_tables(cases: Sequence[Case], row: Key, col: Key) -> str:
    rows = sorted({row(c) for c in cases})
    cols = sorted({col(c) for c in cases})
    cell = {(row(c), col(c)): c for c in cases}
    width = max((len(r) for r in rows), default=4)

    def grid(title: str, show: Callable[[Case], str]) -> list[str]:
        lines = [title, " " * width + " " + " ".join(f"{i:>7}" for i in range(len(cols)))]
        for r in rows:
            cells = [show(cell[r, c]) if (r, c) in cell else "" for c in cols]
            lines.append(f"{r:<{width}} " + " ".join(f"{v:>7}" for v in cells))
        return lines

    wrong = sum(not c.passed for c in cases)
    legend = [f"  {i}: {c}" for i, c in enumerate(cols)]
    return "\n".join(
        [
            *grid("expected", lambda c: _short(c.expected)),
            *grid("observed", lambda c: _short(c.observed)),
            *grid("comparison", lambda c: "." if c.passed else "X"),
            "columns:",
            *legend,
            f"{wrong} wrong out of {len(cases)}",
        ]
    )
