"""Named timeouts given on the command line (`--timeout exec=90`), checked with the topology
file's own bounds, and the topology with them in place."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields, replace

from netconform.errors import UsageError
from netconform.topology import _RANGES, Timeouts, Topology
from netconform.topology_schema import DEFAULT_MAXIMUM


def timeout_overrides(values: Sequence[str], option: str = "--timeout") -> dict[str, float]:
    """`["exec=90", "converge=20"]` -> {"exec": 90.0, "converge": 20.0}: named timeouts given
    on the command line, checked as the topology's own (a name of `Timeouts`, in range)."""
    names = [f.name for f in fields(Timeouts)]
    found: dict[str, float] = {}
    for value in values:
        name, equals, seconds = value.partition("=")
        name = name.strip()
        if not equals or name not in names:
            raise UsageError(
                f"{option} {value!r}: expected NAME=SECONDS, NAME one of {', '.join(names)}"
            )
        low, high = _RANGES.get(name, (1, None))
        high = DEFAULT_MAXIMUM if high is None else high
        try:
            number = float(seconds)
        except ValueError:
            number = float("nan")
        if not (math.isfinite(number) and low <= number <= high):
            raise UsageError(
                f"{option} {value!r}: expected {name}=SECONDS, a number from {low:g} to {high:g}"
            )
        found[name] = number
    return found


def with_timeouts(topology: Topology, overrides: dict[str, float]) -> Topology:
    """The topology with some named timeouts replaced (`timeout_overrides`)."""
    if not overrides:
        return topology
    return replace(topology, timeouts=replace(topology.timeouts, **overrides))
