"""The canary split's measure (the canary suite's engine part): tally rounds from the runner
judged by the sequential test of `netconform.canary`, the expectations and the verdict.

The first round comes with the check's measurement; `sample` (the check's `refine`) sends
the next rounds, one batch per round, until every weight case's test decides. Answers that
are not a backend's are errors: never counted as either track, named in the verdict, and
failing the test only when more than ERROR_BUDGET of the requests sent fail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from netconform import binomial, canary
from netconform.outcomes import RUNNER, Outcome, Share, Verdict
from netconform.probes.base import Probe, Task
from netconform.probes.tally import Tally
from netconform.result import Result
from netconform.scenario import Oracle, Scenario, probe_again

PARTS = 5
"""A round's requests go out as this many curl processes at once (each request's draw is
independent, so splitting a round changes nothing but the wall time)."""
ERROR_BUDGET = 0.05
"""Errors (non-2xx, no answer) tolerated in the weight's sample before it fails as such,
judged once at least two rounds were sent: a request lost now and then on a loaded runner is
named in the message, not a failure; a backend that fails often is."""


@dataclass(frozen=True)
class Track(Outcome):
    """Expected: every answer from one track's pods, and no errors."""

    track: str = ""
    pods: tuple[str, ...] = ()

    def satisfied_by(self, observed: Outcome) -> bool:
        if not isinstance(observed, Tally) or observed.failed or not observed.answered:
            return False
        return observed.count(self.pods) == observed.answered

    def __str__(self) -> str:
        return f"every answer from {self.track}"


@dataclass(frozen=True)
class CanaryWeight(Share):
    """Expected: the sequential test passes for weight `fraction` and `tolerance`; the
    canary's pods say which answers are the canary's."""

    tolerance: float = 0.0
    canary_pods: tuple[str, ...] = ()

    def satisfied_by(self, observed: Outcome) -> bool:
        return isinstance(observed, SplitVerdict) and observed.decision == canary.Decision.PASS

    def plan(self) -> canary.CanaryPlan:
        return canary.CanaryPlan.build(self.fraction, self.tolerance)

    def __str__(self) -> str:
        w, d = canary.percent(self.fraction), canary.percent(self.tolerance)
        return f"canary share {w}% +-{d}"


@dataclass(frozen=True)
class SplitVerdict(Share):
    """Observed: the sequential test's decision, with the share and its 95% interval."""

    decision: str = ""
    requests: int = 0
    text: str = ""
    failed_requests: str = ""
    """Why the test stopped on failed requests (too many errors to judge the share), else
    empty: a share that failed its bounds is not this."""

    def __str__(self) -> str:
        return self.text


def part_probes(requests: int) -> list[Probe]:
    """One round of `requests` as PARTS tally probes (told apart by their `part`)."""
    sizes = [requests // PARTS + (i < requests % PARTS) for i in range(PARTS)]
    return [
        Probe("tally", 80, (("requests", str(n)), ("part", str(i))))
        for i, n in enumerate(sizes)
        if n
    ]


def sample(scenario: Scenario, oracle: Oracle, result: Result) -> Result:
    """The weight's rounds: each weight case's sequential test, one batch a round; the parts
    of each round summed, one case per destination in the end."""
    weight_cases = [c for c in result.cases if isinstance(c.expected, CanaryWeight)]
    if not weight_cases:
        return result
    weights = {
        c.destination: c.expected for c in weight_cases if isinstance(c.expected, CanaryWeight)
    }
    states = {dst: w.plan().state() for dst, w in weights.items()}
    losses = {dst: Losses() for dst in states}
    tallies = {
        dst: summed(c.observed for c in weight_cases if c.destination == dst) for dst in states
    }
    for round_number in range(max(len(s.plan.rounds()) for s in states.values()) + 1):
        for dst, tally in tallies.items():
            record(states[dst], losses[dst], tally, weights[dst].canary_pods)
        open_ = [d for d, s in states.items() if s.decision == canary.Decision.CONTINUE]
        if not open_:
            break
        tasks = [
            Task(f"r{round_number}-{i}-{j}", probe, d)
            for i, d in enumerate(open_)
            for j, probe in enumerate(part_probes(states[d].next_round()))
        ]
        seen = probe_again(scenario, oracle, {RUNNER: tasks})
        tallies = {
            d: summed(seen[RUNNER, t.id].observed for t in tasks if t.destination == d)
            for d in open_
        }
    judged = {dst: verdict_of(states[dst], losses[dst]) for dst in states}
    kept, done = [], set()
    for case in result.cases:
        if not isinstance(case.expected, CanaryWeight):
            kept.append(case)
        elif case.destination not in done:
            done.add(case.destination)
            verdict = judged[case.destination]
            ingress_name = case.detail.split(",")[0]
            kept.append(
                replace(case, observed=verdict, detail=f"{ingress_name}, {rounds_detail(verdict)}")
            )
    return replace(result, cases=tuple(kept))


def summed(observed: Iterable[Outcome]) -> Outcome:
    """The parts of one round as one Tally (the first failure when a part got no Tally)."""
    total = Tally(Verdict.ALLOW)
    for part in observed:
        if not isinstance(part, Tally):
            return part
        total = total + part
    return total


@dataclass
class Losses:
    """The requests of one weight test that were not counted, by reason."""

    reasons: Counter[str] = field(default_factory=Counter)
    fatal: str = ""
    """Why they failed the test ("" when they did not)."""

    @property
    def total(self) -> int:
        return sum(self.reasons.values())

    def __str__(self) -> str:
        return ", ".join(f"{reason} x{n}" for reason, n in self.reasons.most_common())


def record(
    state: canary.CanaryState, losses: Losses, observed: Outcome, canary_pods: tuple[str, ...]
) -> None:
    """One round's answers into the test (errors counted apart, never as either track)."""
    if state.decision != canary.Decision.CONTINUE:
        return
    if not isinstance(observed, Tally):  # no answer at all this round: nothing to weigh
        losses.reasons[str(observed)] += state.next_round()
        losses.fatal = f"a round got no answer at all ({observed})"
        state.decision = canary.Decision.FAIL
        return
    losses.reasons.update(dict(observed.errors))
    canaries = observed.count(canary_pods)
    state.update(canaries, observed.answered - canaries)
    sent = state.requests + losses.total
    if sent >= 2 * state.plan.batch and losses.total > ERROR_BUDGET * sent:
        losses.fatal = (
            f"{losses.total} of {sent} requests failed ({losses}), more than {ERROR_BUDGET:.0%}"
        )
        state.decision = canary.Decision.FAIL


def rounds_detail(verdict: SplitVerdict) -> str:
    return f"{verdict.requests} counted answers in rounds of {canary.DEFAULT_BATCH}"


def verdict_of(state: canary.CanaryState, losses: Losses) -> SplitVerdict:
    low, high = binomial.clopper_pearson(state.canary, state.requests) if state.requests else (0, 1)
    if losses.fatal:
        text = f"FAIL: {losses.fatal}; so far {state.verdict()}"
    else:
        text = state.message()
        if losses.total:
            text += f"; {losses.total} request(s) not counted (non-2xx or no answer): {losses}"
    return SplitVerdict(
        Verdict.ALLOW,
        state.share(),
        low,
        high,
        str(state.decision),
        state.requests,
        text,
        losses.fatal,
    )
