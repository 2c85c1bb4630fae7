"""The binomial distribution, exact (stdlib only): pmf tails, quantiles and the Clopper-Pearson
interval the canary test reads its shares with."""

from __future__ import annotations

import math
from collections.abc import Callable

# --- the binomial distribution, exact (stdlib only) ---------------------------------------


def _log_pmf(k: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def _tail_from(k: int, n: int, p: float, *, down: bool) -> float:
    """P(X <= k) (down) or P(X >= k) for a k on the far side of the mode from that tail:
    summed outward, where every term is smaller than the last, until they stop counting."""
    term, total, odds = math.exp(_log_pmf(k, n, p)), 0.0, p / (1 - p)
    while term > total * 1e-17 and 0 <= k <= n:
        total += term
        term *= k / (n - k + 1) / odds if down else (n - k) / (k + 1) * odds
        k += -1 if down else 1
    return total


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n or p == 0.0:
        return 1.0
    if p == 1.0:
        return 0.0
    if k < math.floor((n + 1) * p):  # below the mode: sum the lower tail itself
        return _tail_from(k, n, p, down=True)
    return 1.0 - _tail_from(k + 1, n, p, down=False)


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X > k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 1.0
    if k >= n or p == 0.0:
        return 0.0
    if p == 1.0:
        return 1.0
    if k >= math.floor((n + 1) * p):  # at or above the mode: sum the upper tail itself
        return _tail_from(k + 1, n, p, down=False)
    return 1.0 - _tail_from(k, n, p, down=True)


def _smallest(n: int, holds: Callable[[int], bool]) -> int:
    """The smallest k in [0, n] for which a monotone (False ... True) predicate holds."""
    low, high = 0, n
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if holds(mid) else (mid + 1, high)
    return low


def binomial_ppf(q: float, n: int, p: float) -> int:
    """The smallest k with P(X <= k) >= q (scipy's binom.ppf)."""
    return _smallest(n, lambda k: binomial_cdf(k, n, p) >= q)


def binomial_isf(q: float, n: int, p: float) -> int:
    """The smallest k with P(X > k) <= q (scipy's binom.isf)."""
    return _smallest(n, lambda k: binomial_sf(k, n, p) <= q)


def _crossing(rate: Callable[[float], float], target: float, *, rising: bool) -> float:
    """The p in [0, 1] where a monotone rate(p) crosses target, by bisection."""
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if (rate(mid) < target) == rising:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval for a rate of k in n; (0, 1) when n is 0."""
    tail = (1 - confidence) / 2
    # low: P(X >= k) = tail (rises with p); high: P(X <= k) = tail (falls with p)
    low = 0.0 if k <= 0 else _crossing(lambda p: binomial_sf(k - 1, n, p), tail, rising=True)
    high = 1.0 if k >= n else _crossing(lambda p: binomial_cdf(k, n, p), tail, rising=False)
    return low, high
