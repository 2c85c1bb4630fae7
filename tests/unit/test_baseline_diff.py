"""The baseline diff: regressions, fixed and new; drift judged against the runs' own noise,
never a single sample; refusal of a baseline of another topology or profile; the CLI."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netconform.errors import BaselineMismatchError
from netconform.topology import Drift
from reports import baseline, outcome

REPO = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "a" * 64


def case(
    cid: str, passed: bool | None = True, pair: str = "east->west", **numbers: Any
) -> dict[str, Any]:
    samples = numbers.pop("samples", None)
    record = {
        "id": cid,
        "slice": cid.split(": ")[0],
        "pair": pair,
        "source": "s",
        "destination": "d",
        "probe": "tcp",
        "port": 1,
        "expected": "ALLOW",
        "observed": "ALLOW" if passed else "TIMEOUT",
        "verdict": "ALLOW",
        "passed": passed,
        "detail": "",
        "numbers": numbers,
    }
    if samples is not None:
        record["samples"] = samples
    return record


def document(
    checks: dict[str, list[dict[str, Any]]], tests: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "kind": "netconform-outcome",
        "schema_version": 1,
        "run_id": "r",
        "profile": "full",
        "status": "passed",
        "exit_status": 0,
        "started": "2026-12-01T00:00:00Z",
        "finished": "",
        "topology": {"name": "lab", "digest": DIGEST, "clusters": []},
        "runner": {"cpus": 2, "load_before": [], "load_after": []},
        "tests": tests or [],
        "checks": [{"id": k, "cases": v} for k, v in checks.items()],
    }


def test_regressions_fixed_and_new() -> None:
    before = document(
        {
            "firewall": [
                case("e->w:9092: a"),
                case("e->w:9092: b"),
                case("e->w:22: c", passed=False),
                case("e->w:80: gone"),
            ]
        }
    )
    after = document(
        {
            "firewall": [
                case("e->w:9092: a", passed=False),
                case("e->w:9092: b"),
                case("e->w:22: c"),
                case("e->w:81: new"),
            ]
        }
    )
    diff = baseline.compare(before, after, Drift(), "before.json")
    assert [(c.slice, c.case) for c in diff.regressions] == [
        ("e->w:80", "e->w:80: gone"),
        ("e->w:9092", "e->w:9092: a"),
    ]
    assert [c.case for c in diff.fixed] == ["e->w:22: c"]
    assert [c.case for c in diff.new] == ["e->w:81: new"]
    lines = diff.lines()
    assert lines[0].startswith("against before.json (run r, full, ")
    assert lines[1].startswith("REGRESSION firewall e->w:80: 1 case(s) passed before, not now")
    assert "  gone: ALLOW -> absent" in lines


def test_a_slice_whose_test_measured_nothing_says_why_once() -> None:
    """Every case of a slice gone because its test errored before measuring: the header is
    followed by the test's error, not only by a list of `absent` cases."""
    before = document({"services": [case("west: a"), case("west: b")]})
    error = {
        "id": "suites/services/test_services.py::test_services_from_pods[west]",
        "suite": "services", "check": "services", "slice": "west", "outcome": "error",
        "duration_s": 1.0, "message": "\nwait 'service echo' timed out after 30 s\nmore",
    }  # fmt: skip
    after = document({"services": []}, tests=[error])
    lines = baseline.compare(before, after, Drift()).lines()
    assert lines[1].startswith("REGRESSION services west")
    assert lines[2] == "  not measured: test error: wait 'service echo' timed out after 30 s"
    assert lines[3] == "  a: ALLOW -> absent"


def test_a_slice_that_is_no_pair_names_the_pairs_of_its_regressions() -> None:
    """A services slice is a region (`west`); its regression header says which region pairs
    regressed, so a gate reading headers only still sees where."""
    before = document({"services": [case("west: a", pair="east->west"), case("west: b")]})
    after = document(
        {"services": [case("west: a", False, pair="east->west"), case("west: b", False)]}
    )
    lines = baseline.compare(before, after, Drift()).lines()
    assert lines[1] == "REGRESSION services west (east->west): 2 case(s) passed before, not now"


def test_a_test_without_cases_of_its_own_is_compared_as_a_case() -> None:
    passed = {
        "id": "suites/dns/t.py::test_dns_stub_audit[east:west]",
        "suite": "dns",
        "outcome": "passed",
        "duration_s": 0,
        "message": "",
    }
    failed = {**passed, "outcome": "failed"}
    diff = baseline.compare(document({}, [passed]), document({}, [failed]), Drift())
    assert [c.case for c in diff.regressions] == ["test: test_dns_stub_audit[east:west]"]
    covered = {**failed, "check": "firewall", "slice": "e->w:9092"}
    before = document(
        {"firewall": [case("e->w:9092: a")]},
        [{**passed, "check": "firewall", "slice": "e->w:9092"}],
    )
    after = document({"firewall": [case("e->w:9092: a", passed=False)]}, [covered])
    assert len(baseline.compare(before, after, Drift()).regressions) == 1  # not listed twice


def pings(pair: str, lost: list[int], sent: int = 3) -> list[dict[str, Any]]:
    return [
        case(f"{pair}: p{i}", pair=pair, ping_sent=sent, ping_received=sent - n)
        for i, n in enumerate(lost)
    ]


def test_loss_is_flagged_only_when_credibly_above_the_baseline_and_the_threshold() -> None:
    quiet = pings("east->west", [0] * 16) + pings("central->east", [0] * 16)
    one_lost = pings("east->west", [1] + [0] * 15) + pings("central->east", [0] * 16)
    lossy = pings("east->west", [1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0])
    lossy += pings("central->east", [0] * 16)
    assert baseline.compare(document({"p": quiet}), document({"p": one_lost}), Drift()).drift == []
    flags = baseline.compare(document({"p": quiet}), document({"p": lossy}), Drift()).drift
    assert [(f.pair, f.metric) for f in flags] == [("east->west", "loss")]
    assert flags[0].line().startswith("east->west loss rate: 0.0% -> 18.8% (9/48 pings lost")


def latencies(pairs: dict[str, list[float]]) -> list[dict[str, Any]]:
    return [
        case(f"{pair}: c{i}", pair=pair, connect_ms=v)
        for pair, values in pairs.items()
        for i, v in enumerate(values)
    ]


def noisy(rng: random.Random, n: int = 28, scale: float = 1.0) -> list[float]:
    return [scale * rng.uniform(0.5, 3.0) for _ in range(n)]


def test_a_p99_moves_on_several_samples_never_on_one() -> None:
    rng = random.Random(7)
    pairs = ("east->west", "west->east", "central->east", "east->central")
    before = {p: noisy(rng) for p in pairs}
    one_slow = {p: noisy(rng) for p in pairs}
    one_slow["east->west"][3] = 1003.0
    retransmits = {p: noisy(rng) for p in pairs}
    for i in (1, 6, 11, 17, 22):  # a SYN lost: the handshake waits for the 1 s retransmit
        retransmits["east->west"][i] += 1000.0
    quiet = baseline.compare(
        document({"c": latencies(before)}), document({"c": latencies(one_slow)}), Drift()
    )
    assert quiet.drift == []
    flagged = baseline.compare(
        document({"c": latencies(before)}), document({"c": latencies(retransmits)}), Drift()
    )
    assert [(f.pair, f.metric, f.statistic) for f in flagged.drift] == [
        ("east->west", "TCP connect", "p99")
    ]
    assert "5 of 28 samples above" in flagged.drift[0].evidence


def test_a_move_common_to_every_pair_is_load_not_a_pair() -> None:
    rng = random.Random(3)
    pairs = ("east->west", "west->east", "central->east", "east->central")
    before = {p: noisy(rng) for p in pairs}
    loaded = {p: noisy(rng, scale=4.0) for p in pairs}  # everything 4x slower: the runner's CPU
    diff = baseline.compare(
        document({"c": latencies(before)}), document({"c": latencies(loaded)}), Drift()
    )
    assert diff.drift == []
    assert any("moved alike on 4 pairs" in n for n in diff.notes)


def test_starved_samples_and_too_few_samples_are_not_judged() -> None:
    before = latencies({"east->west": [1.0] * 4})
    after = latencies({"east->west": [900.0] * 4})
    diff = baseline.compare(document({"c": before}), document({"c": after}), Drift())
    assert diff.drift == [] and diff.not_judged == 1
    starved = copy.deepcopy(latencies({"east->west": [900.0] * 30}))
    for record in starved:
        record["starved"] = True
    diff = baseline.compare(
        document({"c": latencies({"east->west": [1.0] * 30})}), document({"c": starved}), Drift()
    )
    assert diff.drift == []


def test_mtu_and_share_are_judged_case_by_case() -> None:
    before = document(
        {
            "m": [case("a: mtu", mtu=1500)],
            "s": [case("b: share", share=0.2, share_low=0.18, share_high=0.22)],
        }
    )
    after = document(
        {
            "m": [case("a: mtu", mtu=1400)],
            "s": [case("b: share", share=0.5, share_low=0.46, share_high=0.54)],
        }
    )
    flags = baseline.compare(before, after, Drift()).drift
    assert sorted(f.metric for f in flags) == ["MTU", "share"]


def test_another_topology_or_profile_is_refused_in_one_line() -> None:
    doc = document({})
    baseline.check_comparable(doc, DIGEST, "full", "b.json")
    with pytest.raises(BaselineMismatchError) as err:
        baseline.check_comparable(doc, "sha256:" + "b" * 64, "full", "b.json")
    assert "baseline b.json is of another topology" in str(err.value)
    assert err.value.exit_code == 12 and "\n" not in str(err.value)
    with pytest.raises(BaselineMismatchError, match="ran profile full, this run smoke"):
        baseline.check_comparable(doc, DIGEST, "smoke", "b.json")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reports.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_netconform_report_diff_exit_codes(tmp_path: Path) -> None:
    good, bad = tmp_path / "a.json", tmp_path / "b.json"
    outcome.write_atomic(good, document({"f": [case("x: a")]}))
    outcome.write_atomic(bad, document({"f": [case("x: a", passed=False)]}))
    same = _cli("diff", str(good), str(good))
    assert same.returncode == 0 and "0 regression(s)" in same.stdout
    worse = _cli("diff", str(good), str(bad))
    assert worse.returncode == 1 and worse.stdout.splitlines()[1].startswith("REGRESSION f x")
    other = tmp_path / "c.json"
    changed = document({})
    changed["topology"]["digest"] = "sha256:" + "c" * 64
    outcome.write_atomic(other, changed)
    refused = _cli("diff", str(other), str(good))
    assert refused.returncode == 12 and len(refused.stderr.strip().splitlines()) == 1
    future = tmp_path / "d.json"
    future.write_text(json.dumps({**document({}), "schema_version": 99}))
    unknown = _cli("diff", str(future), str(good))
    assert unknown.returncode == 13 and "unknown outcome schema version 99" in unknown.stderr
    assert "Traceback" not in refused.stderr + unknown.stderr
    assert _cli("validate", str(good)).returncode == 0
