"""The canary weight-split decision: does the canary get the share of requests it was given?

The rule (SEMANTICS.md, "Sound canary test"): two one-sided sequential probability ratio tests
(Wald's SPRT) of H0 p = w, one against p = w - d ("below") and one against p = w + d
("above"), each at alpha/2 and power 1 - beta, looked at after every round of `batch`
counted answers. A side that accepts H0 is ruled out and stops; the test fails as soon as
either side accepts its alternative and passes once both are ruled out. It is capped at
`CAP_FACTOR` (3) times the equal-power fixed sample size, where the exact fixed-sample test
decides (not at 1 time, as SEMANTICS.md has it: see `CAP_FACTOR`).

Edges. An alternative at or beyond 0 (or 1) is clamped there: that side tests "the canary gets
nothing" (or "everything"), the broken canary worth catching at any weight; one answer of the
other kind rules it out at once (its likelihood ratio is 0), so a correct controller pays for
it only until its first such answer, about 1/w requests. A clamped alternative is still a
simple hypothesis, so the error bounds below hold unchanged. The side with no room at all
(below w = 0, above w = 1) is dropped: at w = 0 one canary answer is decisive (its likelihood
ratio is infinite), as is one stable answer at w = 1.

Error bounds. For any stopping rule (rounds, cap, the other side), the probability under
p = w that a side's log-likelihood ratio ends at or above A is at most e^-A times its
probability under that side's alternative, so at most (alpha/2) / (1 - beta); the
probability under an alternative that its side ends at or below B is at most
e^B = beta / (1 - alpha/2). The sequential part therefore fails a correct controller with
probability at most alpha / (1 - beta) and misses a share of w +- d with probability at most
beta / (1 - alpha/2), whatever the batching. These bounds are a hair above alpha and beta,
and the cap adds the runs it decides; the exact figures, cap included, come from
`operating_characteristics`, a dynamic program over the very rounds the suite sends, and
tests/unit/test_canary_stats.py holds them to alpha and beta (at batch 50: false failure
0.06-0.07%, misses 0.5-0.7% at w +- d, for w = 5 / 20 / 50%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property, lru_cache
from statistics import NormalDist
from typing import Protocol

from netconform.binomial import binomial_isf, binomial_ppf, clopper_pearson

ALPHA = 0.001
"""False failure: the chance a correct controller is failed (SEMANTICS.md)."""
BETA = 0.01
"""Miss: the chance a share d off the weight passes (SEMANTICS.md)."""
DEFAULT_TOLERANCE = 0.05
"""d above 10%: 5 percentage points."""
RELATIVE_UP_TO = 0.10
"""At or below this weight d is relative: half the weight (SEMANTICS.md: "For w <= 10% use
+-2-2.5pp or relative +-50% of w")."""
ZERO_WEIGHT_TOLERANCE = 0.025
"""d at w = 0, where half the weight is nothing: SEMANTICS.md's absolute 2.5pp."""
DEFAULT_BATCH = 50
"""Counted answers per round: the test looks only after each round."""
CAP_FACTOR = 3
"""The cap, in equal-power fixed sample sizes. At 1 (SEMANTICS.md's "cap at fixed N") the runs
still undecided there are the ambiguous ones, and the fixed test at the cap fails or passes
too many of them: by the exact dynamic program at batch 50, false failure 0.13% / 0.14% at
w = 20% / 50% and misses 1.4% at w +- d. At 2 the bounds hold at batch 50 but not at batch 1
(0.107% at w = 50%); at 3 a run reaches the cap with probability about 1e-6."""
MAX_REQUESTS = 10_000_000
"""A plan needing more requests than this is refused (a tolerance too fine for its weight)."""

Status = tuple[bool, ...]
"""Which sides of a test are still open (one flag per side); a rule's state between rounds."""


class Decision(StrEnum):
    """Where the test stands after a round."""

    CONTINUE = "CONTINUE"
    """Not decided: send another round."""
    PASS = "PASS"
    """The share is within w +- d."""
    FAIL = "FAIL"
    """The share is off by d or more."""


# --- fixed-sample tests ------------------------------------------------------------------


@lru_cache(maxsize=4096)
def fixed_acceptance(requests: int, weight: float, alpha: float = ALPHA) -> tuple[int, int]:
    """The exact fixed-sample test of p = weight at `alpha`: accept lo <= canary <= hi, lo and
    hi the binomial quantiles at alpha/2 (each tail rejects with probability below alpha/2)."""
    tail = alpha / 2
    return binomial_ppf(tail, requests, weight), binomial_isf(tail, requests, weight)


class _Walk:
    """P(X_n = k) and P(X_n <= k), X_n ~ Binomial(n, p) with 0 < p < 1, kept up to date while
    n and k grow by one: O(1) a step, by the recurrences of the binomial coefficients."""

    def __init__(self, p: float, k: int) -> None:
        self.p, self.n, self.k = p, 0, k
        self.pmf = self.cdf = 1.0 if k == 0 else 0.0

    def grow(self) -> None:
        if self.k >= 0:
            self.cdf -= self.p * self.pmf
            self.pmf *= (self.n + 1) / (self.n + 1 - self.k) * (1 - self.p)
        self.n += 1

    def next_pmf(self) -> float:
        if self.k < 0:
            return (1 - self.p) ** self.n
        return self.pmf * (self.n - self.k) / (self.k + 1) * self.p / (1 - self.p)

    def up(self) -> None:
        self.pmf = self.next_pmf()
        self.cdf += self.pmf
        self.k += 1

    def up_to(self, k: int) -> None:
        while self.k < k:
            self.up()


def _sides(weight: float, tolerance: float) -> list[tuple[str, float, bool]]:
    """(name, alternative, clamped) of each side: w -+ d clamped into [0, 1], dropped when the
    clamp lands on w itself (below w = 0, above w = 1)."""
    sides = []
    for name, raw in (("below", weight - tolerance), ("above", weight + tolerance)):
        p1 = min(max(raw, 0.0), 1.0)
        if p1 != weight:
            sides.append((name, p1, p1 != raw))
    return sides


def _alternatives(weight: float, tolerance: float) -> list[float]:
    return [p1 for _, p1, _ in _sides(weight, tolerance)]


def _degenerate_power(alternative: float, lo: int, hi: int, n: int) -> float:
    """The fixed test's power at p1 = 0 (every answer stable) or p1 = 1 (every one canary)."""
    return float(lo > 0) if alternative == 0.0 else float(hi < n)


def _degenerate_power_size(weight: float, alternative: float, beta: float) -> int:
    """At w = 0 (1) the exact test accepts only 0 (only n) canary answers: power at p1 is
    1 - (1 - p1)^n (1 - p1^n)."""
    stays = 1 - alternative if weight == 0.0 else alternative
    n = max(1, math.ceil(math.log(beta) / math.log(stays)) - 1)
    while stays**n > beta:
        n += 1
    return n


@lru_cache(maxsize=256)  # a scan of thousands of steps; every case's plan asks again
def equal_power_size(
    weight: float, tolerance: float, alpha: float = ALPHA, beta: float = BETA
) -> int:
    """The smallest N for which the exact two-sided fixed-sample test at alpha
    (`fixed_acceptance`) has power >= 1 - beta at w - d and at w + d (sides outside (0, 1)
    clamped into [0, 1] as the sequential test's are). Scanned from N = 1: the power of an
    exact test is not monotone in N. O(1) a step: the tails are updated, not summed again."""
    alternatives = _alternatives(weight, tolerance)
    if weight in (0.0, 1.0):
        return max(_degenerate_power_size(weight, p, beta) for p in alternatives)
    tail = alpha / 2
    below, top = _Walk(weight, -1), _Walk(weight, 0)  # at lo - 1 and at hi
    inner = [p for p in alternatives if 0.0 < p < 1.0]
    edges = [p for p in alternatives if p in (0.0, 1.0)]
    walks = [(_Walk(p, -1), _Walk(p, 0)) for p in inner]
    for n in range(1, MAX_REQUESTS + 1):
        for walk in (below, top, *(one for pair in walks for one in pair)):
            walk.grow()
        while below.cdf + below.next_pmf() < tail:  # lo only moves up as n grows
            below.up()
        while top.cdf < 1 - tail:
            top.up()
        powers = [_degenerate_power(p, below.k + 1, top.k, n) for p in edges]
        for low, high in walks:
            low.up_to(below.k)
            high.up_to(top.k)
            powers.append(low.cdf + 1 - high.cdf)
        if min(powers) >= 1 - beta:
            return n
    raise ValueError(f"more than {MAX_REQUESTS} requests needed at {weight} +- {tolerance}")


def normal_equal_power_size(
    weight: float, tolerance: float, alpha: float = ALPHA, beta: float = BETA
) -> int:
    """The textbook normal approximation of `equal_power_size`,
    ((z_{alpha/2} sd(w) + z_beta sd(p1)) / d)^2 at the worse side: SEMANTICS.md's
    801 / 2160 / 3142 are these; the exact test needs a little more (842 / 2185 / 3152)."""
    z = NormalDist().inv_cdf

    def size(p1: float) -> float:
        spread = z(1 - alpha / 2) * math.sqrt(weight * (1 - weight))
        spread += z(1 - beta) * math.sqrt(p1 * (1 - p1))
        return (spread / tolerance) ** 2

    return math.ceil(max(size(p) for p in _alternatives(weight, tolerance)))


# --- helpers for the suite ---------------------------------------------------------------


def effective_weight(weight: int, total: int = 100) -> float:
    """The canary's share as ingress-nginx computes it from `canary-weight` and
    `canary-weight-total`: rootfs/etc/nginx/lua/balancer.lua, route_to_alternative_balancer,
    draws `math.random(weightTotal) <= weight` per request, weightTotal 100 unless the
    annotation is above 100; a weight of 0 or less never routes to the canary, one at or above
    the total always does."""
    denominator = total if total > 100 else 100
    return min(max(weight, 0), denominator) / denominator


def bonferroni(alpha: float, checks: int) -> float:
    """The false-failure budget of each of `checks` checks so that all of them together fail a
    correct system with probability at most alpha."""
    if checks < 1:
        raise ValueError(f"a Bonferroni split needs at least one check, got {checks}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be a probability in (0, 1), got {alpha}")
    return alpha / checks


def default_tolerance(weight: float) -> float:
    """d for a weight: 5pp, or half the weight at or below 10% (2.5pp at w = 0)."""
    if weight == 0.0:
        return ZERO_WEIGHT_TOLERANCE
    return weight / 2 if weight <= RELATIVE_UP_TO else DEFAULT_TOLERANCE


def percent(fraction: float) -> str:
    """A fraction as a percentage without needless decimals: 0.2 -> '20', 0.005 -> '0.5'."""
    return f"{fraction * 100:.2f}".rstrip("0").rstrip(".")


def _log_ratio(a: float, b: float) -> float:
    """ln(a / b), with ln(0 / b) = -inf and ln(a / 0) = inf (a, b never both 0)."""
    if a == 0.0:
        return -math.inf
    return math.inf if b == 0.0 else math.log(a / b)


# --- the sequential test -----------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One of the two one-sided SPRTs: H0 p = w against H1 p = `alternative`."""

    name: str
    """Which side: "below" (w - d) or "above" (w + d)."""
    weight: float
    """w, H0's share."""
    alternative: float
    """p1, H1's share."""
    clamped: bool = False
    """w -+ d fell outside [0, 1] and p1 is 0 or 1 instead."""

    @cached_property
    def per_canary(self) -> float:
        """The log-likelihood ratio one canary answer adds: ln(p1 / w) (inf at w = 0)."""
        return _log_ratio(self.alternative, self.weight)

    @cached_property
    def per_stable(self) -> float:
        """What one stable answer adds: ln((1 - p1) / (1 - w)) (inf at w = 1)."""
        return _log_ratio(1.0 - self.alternative, 1.0 - self.weight)

    @property
    def label(self) -> str:
        """How a message names it: 'above 25% (w+d)', 'below 0% (w-d clamped)'."""
        sign = "-" if self.name == "below" else "+"
        how = " clamped" if self.clamped else ""
        return f"{self.name} {percent(self.alternative)}% (w{sign}d{how})"

    def llr(self, canary: int, stable: int) -> float:
        """ln of how much likelier the counts are under p1 than under w."""
        # a count of zero adds nothing, even at an infinite rate (0 * inf is nan)
        return (canary * self.per_canary if canary else 0.0) + (
            stable * self.per_stable if stable else 0.0
        )


class Rule(Protocol):
    """A decision rule the dynamic program can evaluate: a fixed schedule of rounds and a look
    after each one. The last round's look must decide."""

    def start(self) -> Status:
        """The status before the first round."""
        ...

    def rounds(self) -> Sequence[int]:
        """How many counted answers each round brings, to the last."""
        ...

    def look(self, canary: int, requests: int, status: Status) -> tuple[Decision, Status]:
        """The decision after a round, `canary` of `requests` answers so far."""
        ...


def _check_fraction(name: str, value: float, *, open_ends: bool) -> None:
    inside = 0.0 < value < 1.0 if open_ends else 0.0 <= value <= 1.0
    if not inside:  # also refuses nan
        ends = "(0, 1)" if open_ends else "[0, 1]"
        raise ValueError(f"{name} must be a fraction in {ends}, got {value!r}")


@dataclass(frozen=True)
class CanaryPlan:
    """How one canary split is judged: the two SPRTs, their thresholds, the cap and its test.

    `CanaryPlan.build(weight)` fills in the default tolerance; `operating_characteristics(plan,
    p)` gives its exact error rates and sample sizes at any true share p."""

    weight: float
    """w: the canary's share of requests as configured (0.2 for canary-weight 20)."""
    tolerance: float
    """d: shares w +- d are off and must fail (with probability >= 1 - beta)."""
    alpha: float = ALPHA
    """The false-failure bound at p = w: alpha/2 to each side."""
    beta: float = BETA
    """The miss bound at p = w +- d."""
    batch: int = DEFAULT_BATCH
    """Counted answers per round; the test looks after each round."""
    cap_factor: int = CAP_FACTOR
    """The cap in equal-power fixed sample sizes (`CAP_FACTOR`)."""

    def __post_init__(self) -> None:
        _check_fraction("canary weight", self.weight, open_ends=False)
        if not 0.0 < self.tolerance < 1.0:
            raise ValueError(f"tolerance d must be a fraction in (0, 1), got {self.tolerance!r}")
        _check_fraction("alpha", self.alpha, open_ends=True)
        _check_fraction("beta", self.beta, open_ends=True)
        if self.alpha / 2 + self.beta >= 1.0:
            raise ValueError(f"alpha/2 + beta must stay below 1, got {self.alpha}, {self.beta}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise ValueError(f"batch must be at least 1 request per round, got {self.batch!r}")
        if not isinstance(self.cap_factor, int) or self.cap_factor < 1:
            raise ValueError(f"cap_factor must be a whole number >= 1, got {self.cap_factor!r}")

    @classmethod
    def build(
        cls,
        weight: float,
        tolerance: float | None = None,
        alpha: float = ALPHA,
        beta: float = BETA,
        batch: int = DEFAULT_BATCH,
        cap_factor: int = CAP_FACTOR,
    ) -> CanaryPlan:
        """The plan for a weight; tolerance None is `default_tolerance(weight)`."""
        _check_fraction("canary weight", weight, open_ends=False)
        d = default_tolerance(weight) if tolerance is None else tolerance
        return cls(weight, d, alpha, beta, batch, cap_factor)

    @cached_property
    def upper(self) -> float:
        """A = ln((1 - beta) / (alpha/2)): a side at or above it fails the test (7.591)."""
        return math.log((1 - self.beta) / (self.alpha / 2))

    @cached_property
    def lower(self) -> float:
        """B = ln(beta / (1 - alpha/2)): a side at or below it is ruled out (-4.605)."""
        return math.log(self.beta / (1 - self.alpha / 2))

    @cached_property
    def sides(self) -> tuple[Side, ...]:
        """The one-sided tests: both, but at w = 0 only above and at w = 1 only below."""
        sides = _sides(self.weight, self.tolerance)
        return tuple(Side(name, self.weight, p1, clamped) for name, p1, clamped in sides)

    @cached_property
    def fixed_size(self) -> int:
        """The equal-power fixed sample size (`equal_power_size`): what a fixed test needs."""
        return equal_power_size(self.weight, self.tolerance, self.alpha, self.beta)

    @cached_property
    def cap(self) -> int:
        """The most counted answers the test takes: `cap_factor` x `fixed_size`."""
        return self.cap_factor * self.fixed_size

    def acceptance(self, requests: int) -> tuple[int, int]:
        """The fixed-sample test's accepted canary counts at `requests` (used at the cap)."""
        return fixed_acceptance(requests, self.weight, self.alpha)

    def start(self) -> Status:
        """Every side open."""
        return (True,) * len(self.sides)

    def rounds(self) -> list[int]:
        """`batch` answers a round, the last round trimmed to end at the cap."""
        full, rest = divmod(self.cap, self.batch)
        return [self.batch] * full + ([rest] if rest else [])

    def look(self, canary: int, requests: int, status: Status) -> tuple[Decision, Status]:
        """One look: FAIL if an open side reaches A; sides at B are ruled out; PASS once none is
        open; at or past the cap the fixed-sample test decides."""
        stable, still = requests - canary, list(status)
        for i, side in enumerate(self.sides):
            if status[i]:
                llr = side.llr(canary, stable)
                if llr >= self.upper:
                    return Decision.FAIL, status
                still[i] = llr > self.lower
        if not any(still):
            return Decision.PASS, tuple(still)
        if requests >= self.cap:
            lo, hi = self.acceptance(requests)
            return (Decision.PASS if lo <= canary <= hi else Decision.FAIL), tuple(still)
        return Decision.CONTINUE, tuple(still)

    def state(self) -> CanaryState:
        """A fresh run of this test."""
        return CanaryState(self)


@dataclass
class CanaryState:
    """One run of a plan's test: feed it each round's counts, read the decision and why."""

    plan: CanaryPlan
    canary: int = 0
    """Answers from the canary backend so far."""
    stable: int = 0
    """Answers from the stable backend so far (errors count as neither)."""
    decision: Decision = Decision.CONTINUE
    status: Status = ()
    """The sides still open."""
    ruled_out: dict[str, int] = field(default_factory=dict)
    """Each ruled-out side's label, with the requests after which it was."""

    def __post_init__(self) -> None:
        if not self.status:
            self.status = self.plan.start()

    @property
    def requests(self) -> int:
        """Counted answers so far."""
        return self.canary + self.stable

    def next_round(self) -> int:
        """How many counted answers the next round should bring (0 once decided)."""
        if self.decision is not Decision.CONTINUE:
            return 0
        return min(self.plan.batch, max(self.plan.cap - self.requests, 1))

    def update(self, canary: int, stable: int) -> Decision:
        """Add one round's counts and look: CONTINUE, PASS or FAIL."""
        if canary < 0 or stable < 0:
            raise ValueError(f"counts cannot be negative, got canary {canary} stable {stable}")
        if self.decision is not Decision.CONTINUE:
            raise ValueError(f"the test already decided {self.decision} ({self.message()})")
        self.canary += canary
        self.stable += stable
        if self.requests == 0:
            return self.decision
        decision, status = self.plan.look(self.canary, self.requests, self.status)
        for side, was, now in zip(self.plan.sides, self.status, status, strict=True):
            if was and not now:
                self.ruled_out[side.label] = self.requests
        self.decision, self.status = decision, status
        return decision

    def share(self) -> float:
        """The canary's share of the counted answers (0 before any)."""
        return self.canary / self.requests if self.requests else 0.0

    def verdict(self) -> str:
        """What was seen against what was expected, for a person: 'canary share 31.0% (95% CI
        27.9-34.2) expected 20% +-5 after 612 requests (cap 2185)'."""
        low, high = clopper_pearson(self.canary, self.requests)
        plan = self.plan
        return (
            f"canary share {self.share():.1%} (95% CI {low * 100:.1f}-{high * 100:.1f}) "
            f"expected {percent(plan.weight)}% +-{percent(plan.tolerance)} "
            f"after {self.requests} requests (cap {plan.cap})"
        )

    def reason(self) -> str:
        """Which test decided and on what evidence, or what is still open."""
        if self.decision is Decision.FAIL:
            return self._failed()
        if self.decision is Decision.PASS:
            return self._passed()
        still = [s.label for s, open_ in zip(self.plan.sides, self.status, strict=True) if open_]
        return f"still open: {', '.join(still)}; at most {self.plan.cap - self.requests} more"

    def message(self) -> str:
        """The decision, the verdict and the reason in one line (a failure's message)."""
        return f"{self.decision}: {self.verdict()}; {self.reason()}"

    def _crossed(self) -> Side | None:
        for side, open_ in zip(self.plan.sides, self.status, strict=True):
            if open_ and side.llr(self.canary, self.stable) >= self.plan.upper:
                return side
        return None

    def _at_cap(self) -> str:
        lo, hi = self.plan.acceptance(self.requests)
        where = "above" if self.canary > hi else "below" if self.canary < lo else "inside"
        return (
            f"at the cap: {self.canary} canary answers of {self.requests} are {where} the exact "
            f"fixed-sample test's accepted {lo}-{hi} (alpha {self.plan.alpha:g})"
        )

    def _failed(self) -> str:
        side = self._crossed()
        if side is None:
            return self._at_cap()
        if side.per_canary == math.inf and self.canary:
            return f"{side.label}: {_answers(self.canary, 'canary')}, and weight 0% sends none"
        if side.per_stable == math.inf and self.stable:
            return f"{side.label}: {_answers(self.stable, 'stable')}, and weight 100% sends none"
        if side.alternative in (0.0, 1.0):
            kind, rate = (
                ("canary", self.plan.weight)
                if side.alternative == 0.0
                else ("stable", 1 - self.plan.weight)
            )
            chance = (1 - rate) ** self.requests
            return (
                f"{side.label}: not one {kind} answer in {self.requests} requests "
                f"(at {percent(self.plan.weight)}% a {chance:.2g} chance)"
            )
        ratio = math.exp(min(side.llr(self.canary, self.stable), 700.0))
        return (
            f"{side.label}: the answers are {_times(ratio)}x likelier at "
            f"{percent(side.alternative)}% than at {percent(self.plan.weight)}% "
            f"(fails at {_times(math.exp(self.plan.upper))}x: alpha/2 = {self.plan.alpha / 2:g})"
        )

    def _passed(self) -> str:
        if any(self.status):
            return self._at_cap()
        ruled = [f"{label} after {n} requests" for label, n in self.ruled_out.items()]
        bound = (
            f"the answers {_times(math.exp(-self.plan.lower))}x likelier at "
            f"{percent(self.plan.weight)}% than there: beta = {self.plan.beta:g}"
        )
        return f"ruled out {' and '.join(ruled)} ({bound})"


def _answers(count: int, kind: str) -> str:
    return f"{count} {kind} answer{'' if count == 1 else 's'}"


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}" if ratio < 1e6 else f"{ratio:.2g}"
