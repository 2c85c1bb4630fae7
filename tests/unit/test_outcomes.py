"""Outcomes (expected vs observed), case descriptions, failure reports and truth tables."""

from __future__ import annotations

import pytest

from netconform.outcomes import (
    ALLOW,
    NXDOMAIN,
    REFUSED,
    RUNNER,
    TIMEOUT,
    Answer,
    Case,
    Certificate,
    Endpoint,
    HttpStatus,
    Mtu,
    Outcome,
    Share,
    Verdict,
    dns_name,
    failure_report,
    ingress,
    load_balancer,
    node_port,
    plain,
    pod,
    service_ip,
    service_name,
)
from netconform.result import Result, region_pair, source_cluster

EAST = pod("east", "probe-0-0", "10.101.1.2")
WEST = pod("west", "probe-0-0", "10.102.1.2")
CENTRAL = pod("central", "probe-0-0", "10.103.1.2")
CERT = Certificate(
    Verdict.ALLOW,
    subject="CN = shop.test, O = Acme",
    issuer="CN = Lab CA",
    not_after="Dec 25 09:12:42 2026 GMT",
    verified="ok",
)


@pytest.mark.parametrize(
    ("expected", "observed", "passes"),
    [
        # plain verdicts
        (ALLOW, ALLOW, True),
        (ALLOW, TIMEOUT, False),
        (TIMEOUT, plain(Verdict.TIMEOUT), True),
        (REFUSED, TIMEOUT, False),
        (ALLOW, HttpStatus(Verdict.ALLOW, 500), True),  # a plain expectation asks the verdict only
        (NXDOMAIN, Answer(Verdict.ALLOW, ("10.1.2.3",)), False),
        # DNS answers: empty expected records mean any answer
        (Answer(Verdict.ALLOW), Answer(Verdict.ALLOW, ("10.1.2.3",)), True),
        (Answer(Verdict.ALLOW, ("10.1.2.3",)), Answer(Verdict.ALLOW, ("10.1.2.3",)), True),
        (
            Answer(Verdict.ALLOW, ("10.0.0.1", "10.0.0.2")),
            Answer(Verdict.ALLOW, ("10.0.0.2", "10.0.0.1")),
            True,
        ),
        (Answer(Verdict.ALLOW, ("10.1.2.3",)), Answer(Verdict.ALLOW, ("10.9.9.9",)), False),
        (
            Answer(Verdict.ALLOW, ("10.0.0.1",)),
            Answer(Verdict.ALLOW, ("10.0.0.1", "10.0.0.2")),
            False,
        ),
        (Answer(Verdict.ALLOW), NXDOMAIN, False),
        (Answer(Verdict.ALLOW), ALLOW, False),
        (Answer(Verdict.NXDOMAIN), Answer(Verdict.ALLOW, ("10.1.2.3",)), False),
        # HTTP: the code, and the Location only when one is expected
        (HttpStatus(Verdict.ALLOW, 200), HttpStatus(Verdict.ALLOW, 200, body="echo-west-0"), True),
        (HttpStatus(Verdict.ALLOW, 200), HttpStatus(Verdict.ALLOW, 503), False),
        (HttpStatus(Verdict.ALLOW, 308), HttpStatus(Verdict.ALLOW, 308, "https://shop/"), True),
        (
            HttpStatus(Verdict.ALLOW, 308, "https://shop/"),
            HttpStatus(Verdict.ALLOW, 308, "https://shop/"),
            True,
        ),
        (
            HttpStatus(Verdict.ALLOW, 308, "https://shop/"),
            HttpStatus(Verdict.ALLOW, 308, "http://shop/"),
            False,
        ),
        (HttpStatus(Verdict.ALLOW, 308, "https://shop/"), HttpStatus(Verdict.ALLOW, 200), False),
        (HttpStatus(Verdict.ALLOW, 200), REFUSED, False),
        # certificates: only the fields the expectation names
        (Certificate(Verdict.ALLOW), CERT, True),
        (Certificate(Verdict.ALLOW, verified="ok"), CERT, True),
        (
            Certificate(Verdict.ALLOW, subject="CN = shop.test, O = Acme", issuer="CN = Lab CA"),
            CERT,
            True,
        ),
        (Certificate(Verdict.ALLOW, issuer="CN = Other CA"), CERT, False),
        (
            Certificate(Verdict.ALLOW, verified="ok"),
            Certificate(Verdict.ALLOW, subject="CN = x", verified="hostname mismatch"),
            False,
        ),
        (Certificate(Verdict.ALLOW, not_after="Jan  1 00:00:00 2030 GMT"), CERT, False),
        (Certificate(Verdict.ALLOW), plain(Verdict.TLS_ERROR), False),
        (Certificate(Verdict.TLS_ERROR), CERT, False),
        # shares: inside the closed interval
        (Share(Verdict.ALLOW, low=0.4, high=0.6), Share(Verdict.ALLOW, 0.5), True),
        (Share(Verdict.ALLOW, low=0.4, high=0.6), Share(Verdict.ALLOW, 0.4), True),
        (Share(Verdict.ALLOW, low=0.4, high=0.6), Share(Verdict.ALLOW, 0.6), True),
        (Share(Verdict.ALLOW, low=0.4, high=0.6), Share(Verdict.ALLOW, 0.39), False),
        (Share(Verdict.ALLOW, low=0.4, high=0.6), Share(Verdict.ALLOW, 0.61), False),
        (Share(Verdict.ALLOW, low=0.4, high=0.6), ALLOW, False),
        # MTU: at least
        (Mtu(Verdict.ALLOW, 1400), Mtu(Verdict.ALLOW, 1500), True),
        (Mtu(Verdict.ALLOW, 1400), Mtu(Verdict.ALLOW, 1400), True),
        (Mtu(Verdict.ALLOW, 1400), Mtu(Verdict.ALLOW, 1399), False),
        (Mtu(Verdict.ALLOW, 1400), TIMEOUT, False),
    ],
)
def test_satisfied_by(expected: Outcome, observed: Outcome, passes: bool) -> None:
    assert expected.satisfied_by(observed) is passes


@pytest.mark.parametrize(
    ("outcome", "text"),
    [
        (ALLOW, "ALLOW"),
        (plain(Verdict.TLS_ERROR), "TLS_ERROR"),
        (Answer(Verdict.ALLOW), "ANSWER"),
        (Answer(Verdict.ALLOW, ("10.0.0.1", "10.0.0.2")), "ANSWER 10.0.0.1,10.0.0.2"),
        (HttpStatus(Verdict.ALLOW, 200, body="echo-west-0"), "HTTP 200 from echo-west-0"),
        (HttpStatus(Verdict.ALLOW, 308, "https://shop/"), "HTTP 308 -> https://shop/"),
        (Certificate(Verdict.ALLOW), "CERT (any)"),
        (
            CERT,
            "CERT subject=CN = shop.test, O = Acme issuer=CN = Lab CA verified=ok",
        ),
        (
            Certificate(Verdict.ALLOW, verified="hostname mismatch"),
            "CERT verified=hostname mismatch",
        ),
        (Share(Verdict.ALLOW, 0.25), "SHARE 25.0%"),
        (Share(Verdict.ALLOW, low=0.4, high=0.6), "SHARE 40.0%-60.0%"),
        (Mtu(Verdict.ALLOW, 1400), "MTU 1400"),
    ],
)
def test_str(outcome: Outcome, text: str) -> None:
    assert str(outcome) == text


def test_a_failure_reads_expected_then_observed() -> None:
    case = Case(
        EAST,
        ingress("west", "shop", "/", "10.102.0.50"),
        "http",
        80,
        HttpStatus(Verdict.ALLOW, 308, "https://shop/"),
        HttpStatus(Verdict.ALLOW, 200),
        "HTTP 200 from 10.102.0.50",
    )
    assert not case.passed
    assert "expected HTTP 308 -> https://shop/ observed HTTP 200 (" in case.describe()


def test_endpoint_labels() -> None:
    assert EAST.label == "east/probe-0-0 (10.101.1.2)"
    assert service_ip("west", "default", "echo", "10.96.0.10").label == (
        "west/default/echo:service (10.96.0.10)"
    )
    assert service_name("west", "echo.west.svc.cluster.local").label == (
        "west/echo.west.svc.cluster.local"
    )
    assert node_port("west", "echo", "node-1", "10.102.0.3").label == (
        "west/echo:nodeport (10.102.0.3)"
    )
    assert load_balancer("west", "echo", "203.0.113.9").label == (
        "west/echo:loadbalancer (203.0.113.9)"
    )
    assert ingress("west", "shop", "/cart", "10.102.0.50").label == (
        "west/shop/cart:ingress (10.102.0.50)"
    )
    assert dns_name("west", "echo.west").label == "west/echo.west"


def test_runner_label_is_just_runner() -> None:
    assert RUNNER.label == "runner"


def case(
    src: Endpoint = EAST,
    dst: Endpoint = WEST,
    protocol: str = "tcp",
    port: int = 8080,
    expected: Outcome = ALLOW,
    observed: Outcome = ALLOW,
    detail: str = "connected",
) -> Case:
    return Case(src, dst, protocol, port, expected, observed, detail)


def test_describe_format() -> None:
    c = case(observed=TIMEOUT, detail="connect timed out")
    assert c.describe() == (
        "east/probe-0-0 (10.101.1.2) -> west/probe-0-0 (10.102.1.2):8080 tcp "
        "expected ALLOW observed TIMEOUT (connect timed out)"
    )
    icmp = case(protocol="icmp", port=0, detail="3/3 replies")
    assert icmp.target == "west/probe-0-0 (10.102.1.2)"
    assert icmp.describe() == (
        "east/probe-0-0 (10.101.1.2) -> west/probe-0-0 (10.102.1.2) icmp "
        "expected ALLOW observed ALLOW (3/3 replies)"
    )


def test_failure_report_lists_only_failed_cases() -> None:
    ok = case()
    bad = case(dst=CENTRAL, observed=REFUSED, detail="connection refused")
    worse = case(src=WEST, dst=EAST, protocol="icmp", port=0, observed=TIMEOUT, detail="0/3")
    assert failure_report([ok]) == ""
    assert failure_report([]) == ""
    assert failure_report([ok, bad, worse], cause="a firewall drops east->central") == (
        "likely cause: a firewall drops east->central\n"
        "2 case(s) failed:\n"
        "  east/probe-0-0 (10.101.1.2) -> central/probe-0-0 (10.103.1.2):8080 tcp "
        "expected ALLOW observed REFUSED (connection refused)\n"
        "  west/probe-0-0 (10.102.1.2) -> east/probe-0-0 (10.101.1.2) icmp "
        "expected ALLOW observed TIMEOUT (0/3)"
    )
    assert failure_report([bad]).splitlines()[0] == "1 case(s) failed:"
    assert "likely cause" not in failure_report([bad])


def test_failure_report_shows_a_screenful_and_says_how_many_more() -> None:
    many = [case(observed=TIMEOUT, detail=f"try {i}") for i in range(25)]
    lines = failure_report(many, cause="the peering", limit=20).splitlines()
    assert lines[0] == "likely cause: the peering"
    assert lines[1] == "25 case(s) failed, the first 20:"
    assert len(lines) == 23 and "(try 19)" in lines[21]
    assert lines[-1] == "  ... 5 more in the attachment 'failed cases'"


def test_raw_output_does_not_change_equality() -> None:
    from netconform.command import CommandResult

    raw = CommandResult(("nc",), 0, "", "succeeded", "east/probe-0-0")
    assert Case(EAST, WEST, "tcp", 8080, ALLOW, ALLOW, "connected", raw=raw) == case()


EW_OK = case()
EW_BAD = case(protocol="icmp", port=0, observed=TIMEOUT, detail="0/3 replies")
EC_BAD = case(dst=CENTRAL, observed=REFUSED, detail="connection refused")
WE_OK = case(src=WEST, dst=EAST)
RESULT = Result((EW_OK, EW_BAD, EC_BAD, WE_OK))


def test_failed_slice_and_slices() -> None:
    assert RESULT.failed == (EW_BAD, EC_BAD)
    assert RESULT.slice(region_pair, "east->west").cases == (EW_OK, EW_BAD)
    assert RESULT.slice(region_pair, "west->west").cases == ()
    slices = RESULT.slices(region_pair)
    assert list(slices) == ["east->west", "east->central", "west->east"]  # first-seen order
    assert slices["east->central"] == Result((EC_BAD,))
    assert {k: len(v.cases) for k, v in RESULT.slices(source_cluster).items()} == {
        "east": 3,
        "west": 1,
    }
    assert RESULT.where(lambda c: c.protocol == "icmp").cases == (EW_BAD,)
    assert RESULT.report("east is cut off").startswith("likely cause: east is cut off\n")
    assert RESULT.slice(region_pair, "west->east").report() == ""


def test_tables_grid() -> None:
    east, west = "east/probe-0-0 (10.101.1.2)", "west/probe-0-0 (10.102.1.2)"

    def line(row: str, *cells: str) -> str:
        return f"{row} " + " ".join(f"{c:>7}" for c in cells)

    head = line(" " * len(east), "0", "1", "2", "3")
    # columns sorted: central tcp, east tcp, west icmp, west tcp; empty cells stay blank
    assert RESULT.tables().splitlines() == [
        "expected",
        head,
        line(east, "ALLOW", "", "ALLOW", "ALLOW"),
        line(west, "", "ALLOW", "", ""),
        "observed",
        head,
        line(east, "REFUSED", "", "TIMEOUT", "ALLOW"),
        line(west, "", "ALLOW", "", ""),
        "comparison",
        head,
        line(east, "X", "", "X", "."),
        line(west, "", ".", "", ""),
        "columns:",
        "  0: central/probe-0-0 (10.103.1.2):8080 tcp",
        "  1: east/probe-0-0 (10.101.1.2):8080 tcp",
        "  2: west/probe-0-0 (10.102.1.2) icmp",
        "  3: west/probe-0-0 (10.102.1.2):8080 tcp",
        "2 wrong out of 4",
    ]
    assert head == " " * 27 + "       0       1       2       3"


def test_tables_by_other_keys_and_empty() -> None:
    table = RESULT.tables(row=source_cluster, col=region_pair)
    lines = table.splitlines()
    comparison = lines[lines.index("comparison") + 2 :][:2]
    # east->west holds a passed and a failed case in one cell: the last one is shown
    assert [line.split() for line in comparison] == [["east", "X", "X"], ["west", "."]]
    assert lines[-1] == "2 wrong out of 4"
    assert "  0: east->central" in lines and "  2: west->east" in lines
    assert Result(()).tables().splitlines()[-1] == "0 wrong out of 0"
    dns = case(
        expected=Answer(Verdict.ALLOW, ("10.9.9.9",)),
        observed=Answer(Verdict.ALLOW, ("10.1.2.3",)),
    )
    cells = Result((dns,)).tables().splitlines()
    assert cells[2].split()[-1] == "ANSWER1" and cells[5].split()[-1] == "ANSWER1"
    assert cells[8].split()[-1] == "X" and cells[-1] == "1 wrong out of 1"
