"""Two outcome files compared (pure): regressions, fixed and new cases, numeric drift.

- A **regression** is a case or test that passed in the baseline and now fails, is not run,
  or is gone. Regressions fail a run that was given `--baseline`.
- **Fixed** (failed before, passes now) and **new** (not in the baseline) are listed only.
- **Drift** is judged per region pair and metric, over the cases present in both runs, and
  is flagged only when the move is beyond the threshold (`drift:` in the topology) AND beyond
  the two runs' own noise, never on a single sample:
  - latencies (ICMP RTT, TCP connect, DNS query time), p50 and p99: the cutoff is the
    baseline's quantile plus the threshold; the move is flagged when the share of this run's
    samples above the cutoff is credibly (Wilson 99% lower bound) above what that quantile
    leaves above it (50%, 1%). One slow sample never flags a p99; several do;
  - loss: the 95% interval of the change of rate (Newcombe, from both runs' Wilson
    intervals) must exclude zero and the change must exceed the threshold;
  - a share (canary) beyond the threshold with non-overlapping intervals, an MTU smaller by
    more than the threshold.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netconform.errors import BaselineMismatchError
from netconform.stats import wilson
from netconform.topology import Drift as Thresholds


@dataclass(frozen=True)
class Change:
    """One case (or test) whose verdict differs from the baseline's."""

    kind: str
    """regression, fixed or new."""
    check: str
    slice: str
    case: str
    before: str
    after: str
    pair: str = ""
    """The case's `source->destination` regions (empty for a test)."""

    def line(self) -> str:
        what = self.case.split(": ", 1)[-1]
        return f"{what}: {self.before} -> {self.after}"


@dataclass(frozen=True)
class DriftFlag:
    """A metric of a region pair that moved beyond its threshold and the runs' noise."""

    pair: str
    metric: str
    statistic: str
    before: float
    after: float
    unit: str
    evidence: str
    checks: tuple[str, ...] = ()

    def line(self) -> str:
        fmt = _fmt_rate if self.unit == "%" else _fmt_ms if self.unit == "ms" else _fmt_plain
        return (
            f"{self.pair} {self.metric} {self.statistic}: {fmt(self.before)} -> "
            f"{fmt(self.after)} ({self.evidence}; {', '.join(self.checks)})"
        )


def _fmt_ms(v: float) -> str:
    return f"{v:.3g} ms"


def _fmt_rate(v: float) -> str:
    return f"{100 * v:.1f}%"


def _fmt_plain(v: float) -> str:
    return f"{v:g}"


@dataclass
class Diff:
    """What changed between a baseline and a run."""

    baseline: str
    """`before.json (run R, full, 2026-...)`."""
    regressions: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)
    new: list[Change] = field(default_factory=list)
    drift: list[DriftFlag] = field(default_factory=list)
    not_judged: int = 0
    """Pair metrics with too few samples in a run to judge."""
    notes: list[str] = field(default_factory=list)
    """What moved alike everywhere (load), said once."""
    unmeasured: dict[tuple[str, str], str] = field(default_factory=dict)
    """(check, slice) -> why this run's test of it measured nothing (its error's first line)."""

    def headline(self) -> str:
        return (
            f"against {self.baseline}: {len(self.regressions)} regression(s), "
            f"{len(self.fixed)} fixed, {len(self.new)} new, {len(self.drift)} drift flag(s)"
        )

    def lines(self, per_group: int = 6) -> list[str]:
        """Regressions first (grouped per check and slice), then drift, fixed, new."""
        out = [self.headline()]
        for title, changes in (("REGRESSION", self.regressions),):
            for (check, key), group in _grouped(changes).items():
                out.append(
                    f"{title} {check} {key}{_pairs(key, group)}: {len(group)} case(s) "
                    "passed before, not now"
                )
                if (check, key) in self.unmeasured and all(c.after == "absent" for c in group):
                    out.append(f"  not measured: {self.unmeasured[check, key]}")
                out += [f"  {c.line()}" for c in group[:per_group]]
                if len(group) > per_group:
                    out.append(f"  ... and {len(group) - per_group} more (outcome file)")
        out += [f"DRIFT {d.line()}" for d in self.drift]
        for title, changes in (("FIXED", self.fixed), ("NEW", self.new)):
            for (check, key), group in _grouped(changes).items():
                out.append(f"{title} {check} {key}: {len(group)} case(s)")
        out += [f"note: {n}" for n in self.notes]
        if self.not_judged:
            out.append(
                f"drift not judged for {self.not_judged} pair metric(s): too few samples in a run"
            )
        return out


def _pairs(key: str, group: Sequence[Change], most: int = 4) -> str:
    """` (east->west, west->east)`: the region pairs of a slice that is not one itself, so a
    regression header always says where."""
    if "->" in key:
        return ""
    pairs = sorted({c.pair for c in group if c.pair})
    if not pairs:
        return ""
    more = f", +{len(pairs) - most} more" if len(pairs) > most else ""
    return f" ({', '.join(pairs[:most])}{more})"


def _grouped(changes: Iterable[Change]) -> dict[tuple[str, str], list[Change]]:
    groups: dict[tuple[str, str], list[Change]] = {}
    for change in changes:
        groups.setdefault((change.check, change.slice), []).append(change)
    return groups


def describe_file(name: str, document: Mapping[str, Any]) -> str:
    return (
        f"{name} (run {document['run_id']}, {document['profile']}, "
        f"{document['started'][:19]}, {document['status']})"
    )


def check_comparable(baseline: Mapping[str, Any], digest: str, profile: str, name: str) -> None:
    """BaselineMismatchError (one line) unless `baseline` is of this topology and profile."""
    theirs = baseline["topology"]
    if theirs["digest"] != digest:
        names = ", ".join(c["name"] for c in theirs["clusters"])
        raise BaselineMismatchError(
            f"baseline {name} is of another topology: {theirs['name']!r} with "
            f"{len(theirs['clusters'])} cluster(s) ({names}), digest {theirs['digest'][:19]}..., "
            f"this run's is {digest[:19]}...: compare runs of one topology"
        )
    if baseline["profile"] != profile:
        raise BaselineMismatchError(
            f"baseline {name} ran profile {baseline['profile']}, this run {profile}: "
            "compare runs of one profile"
        )


def _cases(document: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["id"], case["id"]): case for c in document["checks"] for case in c["cases"]}


def _state(case: Mapping[str, Any] | None) -> str:
    if case is None:
        return "absent"
    if case["passed"] is None:
        return "NOT RUN"
    return str(case["observed"])


def compare(
    before: Mapping[str, Any], after: Mapping[str, Any], thresholds: Thresholds, name: str = ""
) -> Diff:
    """Every change from `before` to `after` (both validated outcome files)."""
    diff = Diff(describe_file(name or "baseline", before))
    old, now = _cases(before), _cases(after)
    covered: set[tuple[str, str]] = set()
    for key in sorted(old.keys() | now.keys()):
        a, b = old.get(key), now.get(key)
        slice_key = (b or a or {}).get("slice", "")
        pair = str((b or a or {}).get("pair", ""))
        change = Change("", key[0], slice_key, key[1], _state(a), _state(b), pair)
        if a is not None and a["passed"] and not (b is not None and b["passed"]):
            diff.regressions.append(_as(change, "regression"))
            covered.add((key[0], slice_key))
        elif a is not None and a["passed"] is False and b is not None and b["passed"]:
            diff.fixed.append(_as(change, "fixed"))
        elif a is None and b is not None:
            diff.new.append(_as(change, "new"))
    _test_changes(before, after, diff, covered)
    diff.unmeasured = _unmeasured(after)
    diff.drift, diff.not_judged = drift(old, now, thresholds, diff.notes)
    return diff


def _unmeasured(document: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """Why each failed or errored test of a check slice ended (the first line of its
    message): a slice whose cases are all gone says so once instead of only `absent`."""
    found: dict[tuple[str, str], str] = {}
    for test in document["tests"]:
        if test.get("check") and test["outcome"] in ("failed", "error"):
            first = next((ln.strip() for ln in test["message"].splitlines() if ln.strip()), "")
            found[test["check"], test["slice"]] = f"test {test['outcome']}: {first[:300]}"
    return found


def _as(change: Change, kind: str) -> Change:
    return Change(
        kind, change.check, change.slice, change.case, change.before, change.after, change.pair
    )


def _test_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], diff: Diff, covered: set[tuple[str, str]]
) -> None:
    """Tests without cases of their own (the stub audit, cloud preflight) compared as cases;
    a test whose slice already has case regressions is not listed twice."""
    old = {t["id"]: t for t in before["tests"]}
    now = {t["id"]: t for t in after["tests"]}
    for test_id in sorted(old.keys() | now.keys()):
        a, b = old.get(test_id), now.get(test_id)
        ref = b or a or {}
        group = (str(ref.get("check") or ref.get("suite", "")), str(ref.get("slice") or test_id))
        if group in covered:
            continue
        change = Change(
            "", group[0], group[1], f"test: {test_id.split('::')[-1]}",
            a["outcome"] if a else "absent", b["outcome"] if b else "absent",
        )  # fmt: skip
        was, now_ = (a or {}).get("outcome"), (b or {}).get("outcome")
        if was == "passed" and now_ != "passed":
            diff.regressions.append(_as(change, "regression"))
        elif (was, now_) == ("failed", "passed"):
            diff.fixed.append(_as(change, "fixed"))
        elif a is None and b is not None:
            diff.new.append(_as(change, "new"))


# -- drift -----------------------------------------------------------------------------------

#: metric -> (name in a case record, unit, threshold field); samples first, then numbers
LATENCIES = {
    "rtt": ("rtt_ms", "ICMP RTT", "rtt_ms"),
    "connect": ("connect_ms", "TCP connect", "connect_ms"),
    "dns": ("dns_ms", "DNS query time", "dns_ms"),
}
QUANTILES = ((0.5, "p50"), (0.99, "p99"))
LOSS_Z = 1.96
"""The loss change's interval is 95%: a 3-region pair's 48 pings then flag 20% loss in each
direction about 19 times in 20 (6 or more lost against none); a healthy pair losing that many
by chance at 1% loss happens about once in a million runs."""


def quantile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _pooled(
    cases: Mapping[tuple[str, str], Mapping[str, Any]], keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[list[float], set[str]]]:
    """(pair, metric) -> samples over the cases `keys` (starved timings left out)."""
    pooled: dict[tuple[str, str], tuple[list[float], set[str]]] = {}
    for key in keys:
        case = cases[key]
        if case.get("starved"):
            continue
        for metric, (name, _, _) in LATENCIES.items():
            values = case.get("samples", {}).get(name)
            if values is None and name in case["numbers"]:
                values = [case["numbers"][name]]
            if values:
                samples, checks = pooled.setdefault((case["pair"], metric), ([], set()))
                samples.extend(float(v) for v in values)
                checks.add(key[0])
    return pooled


def drift(
    old: Mapping[tuple[str, str], Mapping[str, Any]],
    now: Mapping[tuple[str, str], Mapping[str, Any]],
    limits: Thresholds,
    notes: list[str] | None = None,
) -> tuple[list[DriftFlag], int]:
    """Flags over the cases present in both runs, and how many pair metrics were not judged.

    A latency that moved alike on every pair (the median over pairs of after/before, with 3
    pairs or more) is the runner's or the lab's load, not one pair's network: each pair is
    judged against the baseline scaled by that common move (never scaled down), and the move
    itself is said in `notes`."""
    both = sorted(old.keys() & now.keys())
    flags: list[DriftFlag] = []
    before, after = _pooled(old, both), _pooled(now, both)
    judged = {
        key: (samples, after[key][0], checks)
        for key, (samples, checks) in before.items()
        if key in after and min(len(samples), len(after[key][0])) >= limits.min_samples
    }
    not_judged = len(before.keys() | after.keys()) - len(judged)
    for metric, (_, label, limit_name) in LATENCIES.items():
        limit = float(getattr(limits, limit_name))
        pairs = {pair: v for (pair, m), v in sorted(judged.items()) if m == metric}
        for q, stat in QUANTILES:
            ratios = [
                math.log(max(quantile(a, q), 1e-3) / max(quantile(b, q), 1e-3))
                for b, a, _ in pairs.values()
            ]
            scale = math.exp(statistics.median(ratios)) if len(ratios) >= 3 else 1.0
            if notes is not None and abs(math.log(scale)) > math.log(1 + limits.relative):
                notes.append(
                    f"{label} {stat} moved alike on {len(ratios)} pairs (x{scale:.2f}, median): "
                    "the runner's or the clusters' load, not one pair; pairs judged against it"
                )
            for pair, (samples_b, samples_a, checks) in pairs.items():
                base = quantile(samples_b, q)
                expected = base * max(1.0, scale)
                cutoff = expected + max(limit, limits.relative * expected)
                above = sum(v > cutoff for v in samples_a)
                if wilson(above, len(samples_a))[0] > 1 - q:
                    evidence = (
                        f"{above} of {len(samples_a)} samples above {cutoff:.3g} ms, "
                        f"baseline n={len(samples_b)}"
                    )
                    flags.append(
                        DriftFlag(pair, label, stat, base, quantile(samples_a, q), "ms",
                                  evidence, tuple(sorted(checks)))
                    )  # fmt: skip
    flags += _loss(old, now, both, limits)
    flags += _per_case(old, now, both, limits)
    return flags, not_judged


def _loss(
    old: Mapping[tuple[str, str], Mapping[str, Any]],
    now: Mapping[tuple[str, str], Mapping[str, Any]],
    keys: Sequence[tuple[str, str]],
    limits: Thresholds,
) -> list[DriftFlag]:
    counts: dict[str, list[int]] = {}
    checks: dict[str, set[str]] = {}
    for key in keys:
        a, b = old[key]["numbers"], now[key]["numbers"]
        if "ping_sent" not in a or "ping_sent" not in b:
            continue
        row = counts.setdefault(str(old[key]["pair"]), [0, 0, 0, 0])
        row[0] += int(a["ping_sent"])
        row[1] += int(a["ping_sent"] - a["ping_received"])
        row[2] += int(b["ping_sent"])
        row[3] += int(b["ping_sent"] - b["ping_received"])
        checks.setdefault(str(old[key]["pair"]), set()).add(key[0])
    flags = []
    for pair, (sent_b, lost_b, sent_a, lost_a) in sorted(counts.items()):
        if not sent_b or not sent_a:
            continue
        rate_b, rate_a = lost_b / sent_b, lost_a / sent_a
        high_b = wilson(lost_b, sent_b, LOSS_Z)[1]
        low_a = wilson(lost_a, sent_a, LOSS_Z)[0]
        # Newcombe's hybrid score interval of rate_a - rate_b (95%)
        lower = rate_a - rate_b - math.hypot(rate_a - low_a, high_b - rate_b)
        if lower > 0 and rate_a - rate_b > limits.loss:
            evidence = (
                f"{lost_a}/{sent_a} pings lost vs {lost_b}/{sent_b}, 95% bound of the change "
                f"+{100 * lower:.1f} points or more"
            )
            flags.append(DriftFlag(pair, "loss", "rate", rate_b, rate_a, "%", evidence,
                                   tuple(sorted(checks[pair]))))  # fmt: skip
    return flags


def _per_case(
    old: Mapping[tuple[str, str], Mapping[str, Any]],
    now: Mapping[tuple[str, str], Mapping[str, Any]],
    keys: Sequence[tuple[str, str]],
    limits: Thresholds,
) -> list[DriftFlag]:
    """A share (canary) or an MTU, case by case: they are not samples of one distribution."""
    flags = []
    for key in keys:
        a, b = old[key]["numbers"], now[key]["numbers"]
        where = f"{old[key]['pair']} {key[1].split(': ', 1)[-1]}"
        if "share" in a and "share" in b and abs(b["share"] - a["share"]) > limits.share:
            narrow = (a.get("share_low", 0), a.get("share_high", 1)) != (0, 1)
            apart = b.get("share_low", 0) > a.get("share_high", 1) or b.get(
                "share_high", 1
            ) < a.get("share_low", 0)
            if apart or not narrow:
                evidence = "intervals apart" if narrow else "no interval measured"
                flags.append(DriftFlag(where, "share", "fraction", a["share"], b["share"], "",
                                       evidence, (key[0],)))  # fmt: skip
        if "mtu" in a and "mtu" in b and b["mtu"] < a["mtu"] - limits.mtu_bytes:
            flags.append(DriftFlag(where, "MTU", "bytes", a["mtu"], b["mtu"], "",
                                   "a path MTU is measured, not sampled", (key[0],)))  # fmt: skip
    return flags
