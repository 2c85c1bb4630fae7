"""The outcome file: case records generic over every outcome type, ids without addresses,
the published schema, atomic writes, the topology digest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.lab import lab_preview
from netconform.command import CommandResult
from netconform.errors import OutcomeFileError
from netconform.outcomes import (
    ALLOW,
    Case,
    Certificate,
    HttpStatus,
    Mtu,
    PingStats,
    Share,
    Verdict,
    dns_name,
    pod,
)
from netconform.record import case_id, case_numbers
from netconform.result import Result, region_pair
from reports import outcome

EAST = pod("east", "probe-0-0", "10.101.1.2")
WEST = pod("west", "probe-1-0", "10.102.2.7")
DIG = ";; ->>HEADER<<- opcode: QUERY, status: NOERROR\n;; Query time: 7 msec\n"
CURL = 'hello\n{"exitcode":0,"http_code":200,"time_connect":0.0012,"time_total":0.004}'


def test_numbers_come_from_the_outcome_the_pings_and_the_tool_whatever_the_type() -> None:
    ping = PingStats(3, 2, 33.3, 0.04, 0.05, 0.06, rtts=(0.04, 0.06))
    icmp = Case(EAST, WEST, "icmp", 0, ALLOW, ALLOW, "2/3", ping)
    mtu = Case(EAST, WEST, "mtu", 0, Mtu(Verdict.ALLOW, 1500), Mtu(Verdict.ALLOW, 1400), "")
    share = Case(
        EAST,
        WEST,
        "http",
        80,
        Share(Verdict.ALLOW, 0, 0.1, 0.3),
        Share(Verdict.ALLOW, 0.21, 0.17, 0.25),
        "",
    )
    cert = Case(
        EAST,
        WEST,
        "tls",
        443,
        ALLOW,
        Certificate(Verdict.ALLOW, "CN = a", "", "Dec 25 09:12:42 2026 GMT", "ok"),
        "",
    )
    raw_dig = CommandResult(("dig",), 0, DIG, "")
    dns = Case(
        EAST,
        dns_name("west", "echo.west.svc.cluster.local"),
        "dns",
        0,
        ALLOW,
        ALLOW,
        "",
        raw=raw_dig,
    )
    raw_curl = CommandResult(("curl",), 0, CURL, "")
    http = Case(EAST, WEST, "http", 80, ALLOW, HttpStatus(Verdict.ALLOW, 200), "", raw=raw_curl)
    assert case_numbers(icmp).numbers == {
        "ping_sent": 3.0,
        "ping_received": 2.0,
        "loss": 1 / 3,
        "rtt_min": 0.04,
        "rtt_avg": 0.05,
        "rtt_max": 0.06,
    }
    assert case_numbers(icmp).samples == {"rtt_ms": [0.04, 0.06]}
    assert case_numbers(mtu).numbers == {"mtu": 1400.0}
    assert case_numbers(share).numbers == {"share": 0.21, "share_low": 0.17, "share_high": 0.25}
    assert case_numbers(cert).numbers == {"cert_not_after": 1798189962.0}
    assert case_numbers(dns).numbers == {"dns_ms": 7.0}
    assert case_numbers(http).numbers == {"connect_ms": 1.2, "total_ms": 4.0}
    starved = Case(EAST, WEST, "http", 80, ALLOW, ALLOW, "", raw=raw_curl, starved=True)
    assert case_numbers(starved).starved


def test_case_ids_name_no_address_so_two_runs_match() -> None:
    case = Case(EAST, WEST, "tcp", 8080, ALLOW, ALLOW, "")
    assert case_id(case, "east->west") == "east->west: east/probe-0-0 -> west/probe-1-0:8080 tcp"
    own = dns_name("east", "10-101-1-2.east.pod.cluster.local")
    record = Case(EAST, own, "dns", 0, ALLOW, ALLOW, "")
    assert case_id(record, "east->east") == (
        "east->east: east/probe-0-0 -> east/<source-ip>.east.pod.cluster.local:dns-name dns"
    )
    assert "10.10" not in case_id(case, "x") and "10-101" not in case_id(record, "x")


def _document(tmp_path: Path) -> dict[str, object]:
    topology = lab_preview(3, tmp_path)
    cases = (
        Case(EAST, WEST, "tcp", 8080, ALLOW, ALLOW, "connected"),
        Case(EAST, WEST, "icmp", 0, ALLOW, ALLOW, "3/3", PingStats(3, 3, 0, 1, 1, 1, rtts=(1.0,))),
    )
    record = outcome.check_record("pod-to-pod", Result(cases), region_pair)
    run = outcome.RunInfo(
        "r1",
        "full",
        topology,
        "2026-12-01T00:00:00Z",
        "2026-12-01T00:01:00Z",
        "passed",
        0,
        {"east": "v1.32.0"},
        (0.5, 0.4, 0.3),
        (0.6, 0.5, 0.4),
    )
    test = {
        "id": "suites/x.py::t[east->west]",
        "suite": "x",
        "outcome": "passed",
        "duration_s": 0.1,
        "message": "",
        "check": "pod-to-pod",
        "slice": "east->west",
    }
    return outcome.build(run, [record], [test])


def test_a_written_file_validates_against_the_published_schema(tmp_path: Path) -> None:
    path = tmp_path / "out" / "outcome.json"
    outcome.write_atomic(path, _document(tmp_path))
    assert sorted(p.name for p in path.parent.iterdir()) == ["outcome.json"]  # no temp left
    document = outcome.read(path)
    assert document["profile"] == "full" and document["schema_version"] == 1
    assert document["checks"][0]["cases"][1]["samples"] == {"rtt_ms": [1.0]}
    assert {c["server_version"] for c in document["topology"]["clusters"]} == {"v1.32.0", ""}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"schema_version": 2},
            "unknown outcome schema version 2 (this netconform reads version 1)",
        ),
        ({"kind": "junit"}, "not a netconform outcome file"),
        ({"profile": "fast"}, "profile: 'fast' is not one of ['smoke', 'full']"),
    ],
)
def test_a_file_of_another_version_or_shape_is_one_line(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "o.json"
    path.write_text(json.dumps({**_document(tmp_path), **change}))
    with pytest.raises(OutcomeFileError) as err:
        outcome.read(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert err.value.exit_code == 13


def test_unreadable_and_non_json_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    for name, words in (("missing.json", "cannot read"), ("bad.json", "not JSON: line 1")):
        with pytest.raises(OutcomeFileError, match=words):
            outcome.read(tmp_path / name)


def test_the_digest_names_the_clusters_not_the_paths(tmp_path: Path) -> None:
    three = outcome.topology_digest(lab_preview(3, tmp_path / "a"))
    again = outcome.topology_digest(lab_preview(3, tmp_path / "b"))
    nine = outcome.topology_digest(lab_preview(9, tmp_path / "a"))
    assert three == again != nine
    assert three.startswith("sha256:") and len(three) == 71


def test_the_runs_diagnosis_is_part_of_the_published_schema(tmp_path: Path) -> None:
    document = _document(tmp_path)
    document["diagnosis"] = [
        {"component": "path", "place": "east<->west", "summary": "east<->west path down: ...",
         "checks": {"pod-to-pod": 64, "dns": 8}},
    ]  # fmt: skip
    path = tmp_path / "outcome.json"
    outcome.write_atomic(path, document)
    assert outcome.read(path)["diagnosis"][0]["place"] == "east<->west"
    wrong = {"component": "path", "place": "x", "summary": "y", "checks": {"a": -1}}
    document["diagnosis"] = [wrong]
    outcome.write_atomic(path, document)
    with pytest.raises(OutcomeFileError, match="diagnosis"):
        outcome.read(path)
