"""The canary test's exact operating characteristics: the probability of each decision, and the
expected and largest number of answers, at a true share p (no simulation)."""

from __future__ import annotations

from dataclasses import dataclass

from netconform.canary import Decision, Rule, Status, _check_fraction

# --- exact operating characteristics -----------------------------------------------------


@dataclass(frozen=True)
class OperatingCharacteristics:
    """A rule's exact behaviour at one true share p."""

    p: float
    """The true canary share."""
    p_fail: float
    """P(FAIL): false failure at p = w, power at p = w +- d."""
    p_pass: float
    """P(PASS): the miss rate at p = w +- d."""
    stops: tuple[tuple[int, float], ...]
    """(requests, probability the test stops after exactly that many), ascending."""
    last_round: int
    """The requests after the rule's last round (its cap)."""

    @property
    def mean_requests(self) -> float:
        """The expected number of counted answers used."""
        return sum(n * q for n, q in self.stops) / sum(q for _, q in self.stops)

    def quantile(self, q: float) -> int:
        """The smallest number of requests by which the test has stopped with probability q."""
        total, target = 0.0, q * sum(mass for _, mass in self.stops)
        for n, mass in self.stops:
            total += mass
            if total >= target * (1 - 1e-12):
                return n
        return self.stops[-1][0]

    @property
    def p_cap(self) -> float:
        """The probability of going on to the last round (the cap)."""
        return sum(mass for n, mass in self.stops if n == self.last_round)


def _spread(masses: list[float], p: float, answers: int) -> list[float]:
    """The canary count's distribution after `answers` more answers, each canary w.p. p: two
    answers a pass (q^2, 2pq, p^2), which halves the passes over the list, then one if odd."""
    q = 1.0 - p
    qq, pq, pp = q * q, 2 * p * q, p * p
    for _ in range(answers // 2):
        masses = [
            a * qq + b * pq + c * pp
            for a, b, c in zip(
                [*masses, 0.0, 0.0], [0.0, *masses, 0.0], [0.0, 0.0, *masses], strict=True
            )
        ]
    if answers % 2:
        masses = [a * q + b * p for a, b in zip([*masses, 0.0], [0.0, *masses], strict=True)]
    return masses


def operating_characteristics(rule: Rule, p: float) -> OperatingCharacteristics:
    """P(FAIL), P(PASS) and the distribution of the requests used, exactly, when each answer is
    the canary's with probability p: a dynamic program over (canary count, status) after each
    round of the rule's schedule. Every continuing state is kept; none is approximated."""
    _check_fraction("true share p", p, open_ends=False)
    # status -> (offset, masses): masses[i] is P(continuing with offset + i canary answers)
    live: dict[Status, tuple[int, list[float]]] = {rule.start(): (0, [1.0])}
    fail = passed = 0.0
    stops: list[tuple[int, float]] = []
    requests = 0
    for answers in rule.rounds():
        requests += answers
        stopped = 0.0
        nxt: dict[Status, dict[int, float]] = {}
        for status, (offset, masses) in live.items():
            for i, mass in enumerate(_spread(masses, p, answers)):
                if mass == 0.0:
                    continue
                decision, after = rule.look(offset + i, requests, status)
                if decision is Decision.CONTINUE:
                    row = nxt.setdefault(after, {})
                    row[offset + i] = row.get(offset + i, 0.0) + mass
                    continue
                stopped += mass
                if decision is Decision.FAIL:
                    fail += mass
                else:
                    passed += mass
        stops.append((requests, stopped))
        live = {status: _dense(row) for status, row in nxt.items()}
        if not live:
            break
    if live:
        raise ValueError(f"the rule left some runs undecided after its last round ({requests})")
    kept = tuple(stop for stop in stops if stop[1] > 0.0)
    return OperatingCharacteristics(p, fail, passed, kept, sum(rule.rounds()))


def _dense(row: dict[int, float]) -> tuple[int, list[float]]:
    low, high = min(row), max(row)
    return low, [row.get(k, 0.0) for k in range(low, high + 1)]
