"""Path MTU per pod pair: DF pings at the expected MTU first; a pair that fails is searched
(rounds of several sizes at once, one batch per source) for the largest packet that crosses.
A packet that vanishes while smaller ones cross, with no fragmentation-needed coming back, is
an MTU black hole, reported by name; nothing crossing at all is a connection failure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from netconform.outcomes import Case, Endpoint, Mtu, Verdict
from netconform.probes.base import Probe, Task
from netconform.probes.mtu import IP_ICMP_HEADERS
from netconform.reachability import likely_cause
from netconform.result import Result
from netconform.scenario import Oracle, Scenario, probe_again

MIN_MTU = 576
SIZES_PER_ROUND = 4


def df_probe(mtu: int) -> Probe:
    return Probe("mtu", params=(("size", str(mtu - IP_ICMP_HEADERS)),))


def expect_mtu(scenario: Scenario) -> Oracle:
    def oracle(_s: Endpoint, _d: Endpoint, _p: Probe) -> Mtu:
        return Mtu(Verdict.ALLOW, scenario.settings.expected_mtu)

    return oracle


def search_mtu(scenario: Scenario, _oracle: Oracle, result: Result) -> Result:
    expected = scenario.settings.expected_mtu
    want = Mtu(Verdict.ALLOW, expected)
    bounds = {(c.source, c.destination): (MIN_MTU - 1, expected) for c in result.cases}
    lost_at: dict[tuple[Endpoint, Endpoint], int] = {}
    refused: set[tuple[Endpoint, Endpoint]] = set()
    for c in result.cases:
        if c.observed.verdict == Verdict.ALLOW:
            bounds[c.source, c.destination] = (expected, expected)
    sizes = [MIN_MTU]
    while True:
        open_ = {k: v for k, v in bounds.items() if v[1] - v[0] > 1}
        if not open_:
            break
        plan: dict[Endpoint, list[Task]] = {}
        for (src, dst), (lo, hi) in open_.items():
            step = max(1, (hi - lo) // (SIZES_PER_ROUND + 1))
            sizes = sorted({min(hi - 1, lo + step * (i + 1)) for i in range(SIZES_PER_ROUND)})
            plan.setdefault(src, []).extend(
                Task(f"m{s}-{dst.name}", df_probe(s), dst) for s in sizes
            )
        seen = probe_again(scenario, lambda *_: want, plan)
        for (src, _tid), case in seen.items():
            key = (src, case.destination)
            size = int(case.detail.split("-byte")[0].split()[-1]) if "-byte" in case.detail else 0
            lo, hi = bounds[key]
            if case.observed.verdict == Verdict.ALLOW:
                lo = max(lo, size)
            elif size and size < hi:
                hi = size
                if case.observed.verdict == Verdict.TOO_BIG:
                    refused.add(key)
                else:
                    lost_at[key] = size
            bounds[key] = (lo, hi)
    cases = tuple(_case(c, want, bounds, lost_at, refused) for c in result.cases)
    return Result(cases, result.not_supported)


Key = tuple[Endpoint, Endpoint]


def _case(
    case: Case,
    want: Mtu,
    bounds: dict[Key, tuple[int, int]],
    lost_at: dict[Key, int],
    refused: set[Key],
) -> Case:
    key = (case.source, case.destination)
    lo, _hi = bounds[key]
    if lo >= want.size:
        return replace(case, expected=want, observed=Mtu(Verdict.ALLOW, lo))
    pair = f"{case.source.cluster}->{case.destination.cluster}"
    if lo < MIN_MTU:
        detail = f"no DF packet of {MIN_MTU} bytes crosses: a connection failure, not the MTU"
        return replace(case, expected=want, observed=case.observed, detail=detail)
    if key in refused:
        detail = f"path MTU {lo}: larger DF packets refused with fragmentation-needed"
    else:
        detail = (
            f"MTU black hole {pair}: {lost_at.get(key, lo + 1)}-byte packets vanish, "
            f"no fragmentation-needed comes back (largest that crosses: {lo})"
        )
    return replace(case, expected=want, observed=Mtu(Verdict.ALLOW, lo), detail=detail)


def mtu_cause(cases: Sequence[Case]) -> str:
    """Black holes and small path MTUs by name (small packets cross there: the path works);
    the pairs where not even small packets cross by the failures' shape (a path, not the
    MTU)."""
    failed = [c for c in cases if not c.passed]
    holes = sorted({c.detail.split(":")[0] for c in failed if "black hole" in c.detail})
    small = sorted({f"{c.source.cluster}->{c.destination.cluster} {c.detail.split(':')[0]}"
                    for c in failed if c.detail.startswith("path MTU ")})  # fmt: skip
    parts = []
    if holes:
        why = "a link with a smaller MTU whose routers send no fragmentation-needed"
        parts.append(f"{', '.join(holes)}: {why}")
    if small:
        parts.append(
            f"{', '.join(small)}: a link with a smaller MTU than expected on the path; "
            "fragmentation-needed comes back, so the path itself works"
        )
    sized = [c for c in failed if "black hole" in c.detail or c.detail.startswith("path MTU ")]
    if len(sized) < len(failed):
        parts.append(likely_cause([c for c in cases if c not in sized]))
    return "; ".join(parts)
