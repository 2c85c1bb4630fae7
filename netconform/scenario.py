"""Scenario x oracle -> result: sources x destinations x probes, one batch per source.

Setup (which endpoints exist), traffic pattern (the scenario) and expectation (the oracle, a
pure function of the case) are kept apart, as Cilium's connectivity tests keep them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

from netconform.errors import WaitTimeoutError
from netconform.outcomes import ALLOW, NOT_SUPPORTED, Case, Endpoint, Outcome
from netconform.probes.base import Probe, Task
from netconform.probes.batch import run_batches
from netconform.result import Result
from netconform.topology import ProbeSettings
from netconform.vantage import Vantage
from netconform.waits import wait_until

Oracle = Callable[[Endpoint, Endpoint, Probe], Outcome]
"""The expected outcome of one case; pure (the NetworkPolicy oracle is one)."""


def always_allow(_src: Endpoint, _dst: Endpoint, _probe: Probe) -> Outcome:
    """The flat-network expectation of seed 000: everything reaches everything."""
    return ALLOW


def distinct(src: Endpoint, dst: Endpoint) -> bool:
    """Every pair but an endpoint to itself."""
    return src != dst


def same_cluster(src: Endpoint, dst: Endpoint) -> bool:
    """Pairs within one cluster (a Service by its ClusterIP, a cluster's own names)."""
    return src.cluster == dst.cluster


def other_cluster(src: Endpoint, dst: Endpoint) -> bool:
    """Pairs of two different clusters (`peer_pair`)."""
    return src.cluster != dst.cluster


def no_context(_src: Endpoint, _dst: Endpoint) -> str:
    return ""


def all_supported(_src: Endpoint, _probe: Probe) -> str:
    return ""


Unsupported = Callable[[Endpoint, Probe], str]
"""Why a probe cannot run from a source ("" when it can)."""


@dataclass(frozen=True)
class Scenario:
    """What to probe: every source tries every probe against every included destination."""

    vantages: Mapping[Endpoint, Vantage]
    """The sources, each with where its probes run (a pod's exec, the runner)."""
    destinations: Sequence[Endpoint]
    probes: Sequence[Probe]
    include: Callable[[Endpoint, Endpoint], bool] = distinct
    """Which (source, destination) pairs are cases."""
    context: Callable[[Endpoint, Endpoint], str] = no_context
    """A prefix for each case's detail (`other-region`)."""
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    probes_of: Callable[[Endpoint], Sequence[Probe]] | None = None
    """Per-destination probes, replacing `probes` (a NodePort's own port, an LB's spread)."""
    unsupported: Unsupported = all_supported
    """Probes a source cannot run: their cases are reported not supported, not probed."""
    expect: Oracle | None = None
    """The expectation, when it needs what the setup found (a Service's ready pods): used
    instead of the check's own oracle."""
    explain: Callable[[Sequence[Case]], str] | None = None
    """A likely cause from every case and what the setup found (the topology's overlaps),
    computed once with the measurement, so every process reports the same."""
    skipped: tuple[Case, ...] = ()
    """Cases the setup found no way to run (a cluster without an ingress controller),
    observed NOT_SUPPORTED with the reason as detail."""

    def tasks(self) -> dict[Endpoint, list[Task]]:
        """Every source's tasks, ids unique per source (sources with none left out)."""
        plan: dict[Endpoint, list[Task]] = {}
        for src in self.vantages:
            tasks = [
                Task(f"t{n}", probe, dst)
                for n, (dst, probe) in enumerate(
                    (d, p)
                    for d in self.destinations
                    if self.include(src, d)
                    for p in (self.probes_of(d) if self.probes_of else self.probes)
                    if not self.unsupported(src, p)
                )
            ]  # fmt: skip
            if tasks:
                plan[src] = tasks
        return plan

    def not_supported(self, oracle: Oracle) -> tuple[Case, ...]:
        """The cases no probe runs for, observed NOT_SUPPORTED with the reason as detail."""
        return tuple(
            Case(src, dst, p.kind, p.port, oracle(src, dst, p), NOT_SUPPORTED, why)
            for src in self.vantages for dst in self.destinations if self.include(src, dst)
            for p in self.probes if (why := self.unsupported(src, p))
        )  # fmt: skip


KNOWN_DOWN: ContextVar[frozenset[tuple[str, str]]] = ContextVar("known_down", default=frozenset())
"""(source cluster, destination cluster) directions this run already found wholly down (the
pod-to-pod check, measured first and alone: every probe between their pods failed). Set by
the runner around a check's measurement: convergence does not re-probe those cases, since a
cut path is no rule the cluster programs late, and re-probing it only spends the timeouts
again per case (a cut peering cost a run 5x its healthy time)."""


def measure(
    scenario: Scenario,
    oracle: Oracle = always_allow,
    converge: float = 0.0,
    judge: Callable[[Result], Result] | None = None,
) -> Result:
    """One batch per source, all at once; a case per (source, destination, probe).

    `judge` (a check's `refine`) rejudges each round's whole result before it is read. With
    `converge` (seconds, the named `converge` timeout), a measurement with failures is
    re-probed, one batch per source, for what clusters program late (as the Kubernetes e2e
    tests wait for rules being programmed): every case that failed in any round is probed
    again each round, and the measurement has converged once the expectation held on
    `probe.converge_rounds` consecutive rounds (default 2, gateway-api's AwaitConvergence
    threshold), so a case that passes on one lucky retry does not count. When the time is
    up first, a case that had not passed that many rounds in a row is reported by its last
    failed observation. Cases across a direction in `KNOWN_DOWN` are not probed again (and
    say so), nor waited for.
    """
    plan = scenario.tasks()
    cases = _probe(scenario, oracle, plan)
    skipped = scenario.not_supported(oracle) + scenario.skipped
    down = KNOWN_DOWN.get()

    def judged() -> Result:
        whole = Result(_noted(tuple(cases.values()), down, converge), skipped)
        return judge(whole) if judge is not None else whole

    def pending(result: Result) -> bool:
        """Failures convergence waits for (not those across a known-down direction)."""
        return any(not _across(c, down) for c in result.failed)

    result = judged()
    if converge <= 0 or not pending(result):
        return result
    suspects = _suspects(cases, result, down)
    good: dict[tuple[Endpoint, str], int] = {}
    """Rounds in a row each re-probed case passed."""
    last_bad = {key: case for key, case in cases.items() if not case.passed}
    failures = dict.fromkeys(last_bad, 1)
    """Rounds each case failed in (a case that converged says how often it failed first)."""
    streak = 0

    def settled() -> bool:
        nonlocal result, streak
        again: dict[Endpoint, list[Task]] = {}
        for src, task_id in sorted(suspects, key=lambda k: (k[0].label, k[1])):
            again.setdefault(src, []).extend(t for t in plan[src] if t.id == task_id)
        fresh = _probe(scenario, oracle, again)
        for key, case in fresh.items():
            good[key] = 0 if not case.passed else good.get(key, 0) + 1
            if not case.passed:
                last_bad[key] = case
                failures[key] = failures.get(key, 0) + 1
        cases.update(fresh)
        result = judged()
        suspects.update(_suspects(cases, result, down))
        streak = 0 if pending(result) else streak + 1
        return streak >= scenario.settings.converge_rounds

    with contextlib.suppress(WaitTimeoutError):
        wait_until(settled, timeout=converge, name="converge", interval=0.2)
    if streak >= scenario.settings.converge_rounds:
        noted = _after_failures(cases, failures)
        if not noted:
            return result
        cases.update(noted)
        return judged()
    # not converged: a case that passed fewer rounds in a row than that is its last failure
    rounds = scenario.settings.converge_rounds
    cases.update({k: c for k, c in last_bad.items() if good.get(k, 0) < rounds})
    return judged()


def _after_failures(
    cases: Mapping[tuple[Endpoint, str], Case], failures: Mapping[tuple[Endpoint, str], int]
) -> dict[tuple[Endpoint, str], Case]:
    """Converged cases that failed first, their detail saying how often: a pass after
    failures is reported as such, never as a clean pass."""
    return {
        key: replace(cases[key], detail=f"{cases[key].detail}; passed after {n} failed round(s)")
        for key, n in failures.items()
        if cases[key].passed
    }


def _across(case: Case, down: frozenset[tuple[str, str]]) -> bool:
    return (case.source.cluster, case.destination.cluster) in down


def _noted(
    cases: tuple[Case, ...], down: frozenset[tuple[str, str]], converge: float
) -> tuple[Case, ...]:
    """Failed cases convergence left alone, because their path is known down, say so."""
    if converge <= 0 or not down:
        return cases
    note = "; not probed again: this run found every probe {}->{} failing"
    return tuple(
        replace(c, detail=c.detail + note.format(c.source.cluster, c.destination.cluster))
        if not c.passed and _across(c, down)
        else c
        for c in cases
    )


def _suspects(
    cases: Mapping[tuple[Endpoint, str], Case],
    judged: Result,
    down: frozenset[tuple[str, str]] = frozenset(),
) -> set[tuple[Endpoint, str]]:
    """The cases to probe again: failed ones, and those a judge failed (by their identity),
    but none across a direction known down."""
    wrong = {(c.source, c.destination, c.protocol, c.port) for c in judged.failed}
    return {
        key
        for key, c in cases.items()
        if (not c.passed or (c.source, c.destination, c.protocol, c.port) in wrong)
        and not _across(c, down)
    }


def probe_again(
    scenario: Scenario, oracle: Oracle, plan: Mapping[Endpoint, Sequence[Task]]
) -> dict[tuple[Endpoint, str], Case]:
    """The cases of `plan` (a subset of `scenario.tasks()`), one batch per source."""
    return _probe(scenario, oracle, plan)


def _probe(
    scenario: Scenario, oracle: Oracle, plan: Mapping[Endpoint, Sequence[Task]]
) -> dict[tuple[Endpoint, str], Case]:
    batches = {src.label: (scenario.vantages[src], tasks) for src, tasks in plan.items()}
    observed = run_batches(batches, scenario.settings)
    cases = {}
    for src, tasks in plan.items():
        by_id = observed[src.label]
        for task in tasks:
            seen = by_id[task.id]
            prefix = scenario.context(src, task.destination)
            cases[src, task.id] = Case(
                src,
                task.destination,
                task.probe.kind,
                task.probe.port,
                oracle(src, task.destination, task.probe),
                seen.outcome,
                f"{prefix}, {seen.detail}" if prefix else seen.detail,
                seen.ping,
                seen.raw,
                seen.starved,
            )
    return cases
