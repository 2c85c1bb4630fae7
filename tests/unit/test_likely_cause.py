"""The cause hint follows the shape of all failures in the matrix."""

from __future__ import annotations

from netconform.outcomes import ALLOW, TIMEOUT, Case, Endpoint
from netconform.reachability import likely_cause

PODS = [Endpoint(r, f"probe-{i}", f"10.{100 + n}.1.{i}", f"{r}-node-0")
        for n, r in enumerate(("central", "east", "west")) for i in range(2)]  # fmt: skip


def matrix(broken: object) -> list[Case]:
    """Every ordered pod pair; `broken(src, dst)` says which time out."""
    return [
        Case(s, d, "icmp", 0, ALLOW, TIMEOUT if broken(s, d) else ALLOW, "")  # type: ignore[operator]
        for s in PODS for d in PODS if s != d
    ]  # fmt: skip


def test_no_failure_no_hint() -> None:
    assert likely_cause(matrix(lambda s, d: False)) == ""


def test_one_pod_in_every_failure() -> None:
    victim = PODS[5]
    hint = likely_cause(matrix(lambda s, d: victim in (s, d)))
    assert hint.startswith(f"every failed case involves {victim.label}")


def test_cross_region_only() -> None:
    cut = {"east", "west"}
    hint = likely_cause(matrix(lambda s, d: {s.cluster, d.cluster} == cut))
    assert hint.startswith("only cross-region traffic fails (east<->west)")


def test_failures_inside_a_region() -> None:
    hint = likely_cause(matrix(lambda s, d: s.cluster == d.cluster == "east" or d.name == "x"))
    assert hint.startswith("failures inside a region too")
