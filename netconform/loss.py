"""Loss as a rate: every ping between two regions judged together, against a loss budget.

One pod pair's three pings say little: one lost packet is 33% "loss". A region pair's pings
together are a sample of its loss rate; the pair fails only when the Wilson score interval's
lower bound (99%) is above the budget (`probe.max_loss`). A pair whose rate is above budget
but not credibly so is probed again (`probe.loss_rounds` times, its ICMP tasks only) before
it is judged, so one lost packet on a healthy network never fails a run and 30% always does.
A pod pair with no reply at all is a reachability failure, judged alone (TIMEOUT).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from netconform.check import Table
from netconform.outcomes import ALLOW, Case, Endpoint, PingStats, Verdict, plain
from netconform.policyhint import policy_cause
from netconform.probes.base import Task
from netconform.reachability import LOSS_RTT_HEADER, icmp_only_cause, likely_cause, loss_rtt_rows
from netconform.result import Result, region_pair
from netconform.scenario import Oracle, Scenario, probe_again
from netconform.stats import wilson
from netconform.topology import Topology


@dataclass(frozen=True)
class PairLoss:
    """The loss of one region pair over every answered pod pair's pings."""

    pair: str
    sent: int
    lost: int
    budget: float

    @property
    def rate(self) -> float:
        return self.lost / self.sent if self.sent else 0.0

    @property
    def bounds(self) -> tuple[float, float]:
        return wilson(self.lost, self.sent)

    @property
    def credibly_above(self) -> bool:
        return self.bounds[0] > self.budget

    @property
    def suspicious(self) -> bool:
        return self.rate > self.budget and not self.credibly_above

    def describe(self) -> str:
        low, high = self.bounds
        return (
            f"{self.pair} loses {self.rate:.1%} of {self.sent} pings "
            f"(99% bound {low:.1%}-{high:.1%}, budget {self.budget:.1%})"
        )


def _answered(case: Case) -> bool:
    return case.protocol == "icmp" and case.ping is not None and case.ping.received > 0


def pair_losses(cases: Sequence[Case], budget: float) -> dict[str, PairLoss]:
    totals: dict[str, list[int]] = {}
    for case in cases:
        if _answered(case):
            assert case.ping is not None
            sent_lost = totals.setdefault(region_pair(case), [0, 0])
            sent_lost[0] += case.ping.transmitted
            sent_lost[1] += case.ping.transmitted - case.ping.received
    return {k: PairLoss(k, sent, lost, budget) for k, (sent, lost) in totals.items()}


def merge(a: PingStats, b: PingStats) -> PingStats:
    """Two samples of the same pod pair as one."""
    sent, received = a.transmitted + b.transmitted, a.received + b.received
    avgs = [(s.rtt_avg, s.received) for s in (a, b) if s.rtt_avg is not None]
    weight = sum(n for _, n in avgs)
    return PingStats(
        sent,
        received,
        round(100.0 * (sent - received) / sent, 4) if sent else 100.0,
        min((s.rtt_min for s in (a, b) if s.rtt_min is not None), default=None),
        round(sum(v * n for v, n in avgs) / weight, 3) if weight else None,
        max((s.rtt_max for s in (a, b) if s.rtt_max is not None), default=None),
        a.starved or b.starved,
        a.rtts + b.rtts,
    )


def judge_loss(scenario: Scenario, oracle: Oracle, result: Result) -> Result:
    """Re-probe suspicious pairs, then judge every ICMP case by its region pair's loss."""
    settings = scenario.settings
    cases = {(c.source, c.destination, c.protocol, c.port): c for c in result.cases}
    plan = scenario.tasks()
    for _ in range(settings.loss_rounds):
        losses = pair_losses(list(cases.values()), settings.max_loss)
        again = {k for k, v in losses.items() if v.suspicious}
        if not again:
            break
        retry = _icmp_tasks(plan, again)
        for new in probe_again(scenario, oracle, retry).values():
            key = (new.source, new.destination, new.protocol, new.port)
            cases[key] = _combined(cases[key], new)
    losses = pair_losses(list(cases.values()), settings.max_loss)
    return Result(tuple(_verdict(c, losses) for c in cases.values()), result.not_supported)


def _icmp_tasks(plan: dict[Endpoint, list[Task]], pairs: set[str]) -> dict[Endpoint, list[Task]]:
    retry: dict[Endpoint, list[Task]] = {}
    for src, tasks in plan.items():
        for task in tasks:
            if task.probe.kind == "icmp" and f"{src.cluster}->{task.destination.cluster}" in pairs:
                retry.setdefault(src, []).append(task)
    return retry


def _combined(old: Case, new: Case) -> Case:
    if old.ping is None or new.ping is None:
        return new
    return replace(new, ping=merge(old.ping, new.ping), detail=f"{new.detail} (re-probed)")


def _verdict(case: Case, losses: dict[str, PairLoss]) -> Case:
    """An ICMP case takes its pair's verdict: LOSS if it lost pings in a pair credibly above
    budget (no reply at all is loss there too), else ALLOW (its own lost pings are within
    the pair's budget). Without any loss in its pair, a case with no reply stays TIMEOUT."""
    pair = losses.get(region_pair(case))
    if case.protocol != "icmp" or case.ping is None or pair is None or case.expected != ALLOW:
        return case
    own = f"{case.ping.received}/{case.ping.transmitted} replies"
    if pair.credibly_above and case.ping.received < case.ping.transmitted and case.ping.transmitted:
        return replace(case, observed=plain(Verdict.LOSS), detail=f"{own}; {pair.describe()}")
    if case.observed.verdict == Verdict.LOSS:
        return replace(case, observed=ALLOW, detail=f"{case.detail}, within {pair.pair}'s budget")
    return case


def loss_cause(cases: Sequence[Case]) -> str:
    """The pairs whose loss is above budget, named with their rate ("" when none)."""
    lossy = sorted({c.detail.split("; ", 1)[1] for c in cases if c.observed.verdict == Verdict.LOSS
                    and "; " in c.detail})  # fmt: skip
    return f"packet loss above budget: {'; '.join(lossy)}" if lossy else ""


def pod_cause(cases: Sequence[Case]) -> str:
    """Live NetworkPolicies selecting the failing pods, loss above budget, ICMP dropped where
    TCP connects, else the shape of the failures."""
    return policy_cause(cases) or loss_cause(cases) or icmp_only_cause(cases) or likely_cause(cases)


def loss_rtt(result: Result, topology: Topology) -> list[Table]:
    """pod-to-pod's report table: loss and RTT per ordered region pair."""
    rows, bad = loss_rtt_rows(result.cases, [str(n) for n in topology.names])
    return [Table("pod-to-pod loss and RTT per region pair", LOSS_RTT_HEADER, rows, bad)]
