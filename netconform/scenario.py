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


def measure(scenario: Scenario, oracle: Oracle = always_allow, converge: float = 0.0) -> Result:
    """One batch per source, all at once; a case per (source, destination, probe).

    With `converge` (seconds, the named `converge` timeout), failed cases are probed again,
    one batch per source that still has any, until they pass or the time is up (as the
    Kubernetes e2e tests wait for rules being programmed); the last observation counts.
    Cases across a direction in `KNOWN_DOWN` are not probed again, and say so.
    """
    plan = scenario.tasks()
    cases = _probe(scenario, oracle, plan)
    skipped = scenario.not_supported(oracle) + scenario.skipped
    down = KNOWN_DOWN.get()

    def retried(case: Case) -> bool:
        return not case.passed and (case.source.cluster, case.destination.cluster) not in down

    if converge <= 0 or not any(retried(c) for c in cases.values()):
        return Result(_noted(tuple(cases.values()), down, converge), skipped)

    def settled() -> bool:
        failing: dict[Endpoint, list[Task]] = {}
        for (src, task_id), case in cases.items():
            if retried(case):
                failing.setdefault(src, []).extend(t for t in plan[src] if t.id == task_id)
        cases.update(_probe(scenario, oracle, failing))
        return not any(retried(c) for c in cases.values())

    with contextlib.suppress(WaitTimeoutError):
        wait_until(settled, timeout=converge, name="converge", interval=0.2)
    return Result(_noted(tuple(cases.values()), down, converge), skipped)


def _noted(
    cases: tuple[Case, ...], down: frozenset[tuple[str, str]], converge: float
) -> tuple[Case, ...]:
    """Failed cases convergence left alone, because their path is known down, say so."""
    if converge <= 0 or not down:
        return cases
    note = "; not probed again: this run found every probe {}->{} failing"
    return tuple(
        replace(c, detail=c.detail + note.format(c.source.cluster, c.destination.cluster))
        if not c.passed and (c.source.cluster, c.destination.cluster) in down
        else c
        for c in cases
    )


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
