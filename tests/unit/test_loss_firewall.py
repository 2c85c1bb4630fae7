"""Loss as a rate per region pair, and the firewall's expectations: pure judgements."""

from __future__ import annotations

from netconform.firewall import CLOSED, declared, firewall_cause, port_probes, region_port
from netconform.loss import PairLoss, _verdict, pair_losses, pod_cause
from netconform.outcomes import ALLOW, REFUSED, TIMEOUT, Case, PingStats, Verdict, plain, pod
from netconform.stats import wilson

EAST = [pod("east", f"probe-{i}", f"10.101.1.{i}") for i in range(4)]
WEST = [pod("west", f"probe-{i}", f"10.102.1.{i}") for i in range(4)]


def ping(src: object, dst: object, received: int, sent: int = 3) -> Case:
    stats = PingStats(sent, received, 100.0 * (sent - received) / sent, 0.1, 0.1, 0.1)
    seen = ALLOW if received == sent else plain(Verdict.LOSS) if received else TIMEOUT
    return Case(src, dst, "icmp", 0, ALLOW, seen, f"{received}/{sent} replies", stats)  # type: ignore[arg-type]


def matrix(lost_every: int) -> list[Case]:
    """16 pod pairs east->west; every `lost_every`-th ping lost (0: none)."""
    cases, n = [], 0
    for s in EAST:
        for d in WEST:
            received = 3
            for _ in range(3):
                n += 1
                received -= 1 if lost_every and n % lost_every == 0 else 0
            cases.append(ping(s, d, received))
    return cases


def test_wilson_bounds_contain_the_rate_and_tighten_with_samples() -> None:
    low, high = wilson(1, 48)
    assert low < 1 / 48 < high and low < 0.01
    assert wilson(30, 100)[0] > 0.18 and wilson(300, 1000)[0] > 0.26
    assert wilson(0, 0) == (0.0, 1.0)


def test_one_lost_ping_is_within_budget_and_its_case_passes() -> None:
    cases = matrix(0)
    cases[5] = ping(EAST[1], WEST[1], 2)
    loss = pair_losses(cases, 0.01)["east->west"]
    assert (loss.sent, loss.lost) == (48, 1) and loss.suspicious and not loss.credibly_above
    judged = _verdict(cases[5], {"east->west": loss})
    assert judged.passed and "within east->west's budget" in judged.detail


def test_thirty_percent_loss_is_credibly_above_and_reported_as_loss_with_the_rate() -> None:
    cases = matrix(3)  # one ping in three lost: 33%
    losses = pair_losses(cases, 0.01)
    assert losses["east->west"].credibly_above
    judged = [_verdict(c, losses) for c in cases]
    assert all(c.observed.verdict == Verdict.LOSS for c in judged)
    assert "east->west loses 33.3% of 48 pings (99% bound" in judged[0].detail
    assert pod_cause(judged).startswith("packet loss above budget: east->west loses 33.3%")


def test_a_silent_pod_pair_without_loss_elsewhere_stays_a_timeout() -> None:
    cases = matrix(0)
    cases[0] = ping(EAST[0], WEST[0], 0)
    losses = pair_losses(cases, 0.01)
    assert _verdict(cases[0], losses).observed == TIMEOUT
    assert PairLoss("a->b", 0, 0, 0.01).rate == 0.0


def test_tcp_connects_but_icmp_dropped_says_so() -> None:
    icmp = ping(EAST[0], WEST[0], 0)
    tcp = Case(EAST[0], WEST[0], "tcp", 8080, ALLOW, ALLOW, "connected")
    assert "TCP connects but ICMP is dropped (east<->west)" in pod_cause([icmp, tcp])
    refused = Case(EAST[0], WEST[0], "tcp", 8080, ALLOW, TIMEOUT, "timed out")
    assert "TCP connects" not in pod_cause([icmp, refused])


def test_firewall_oracle_and_cause() -> None:
    probes = port_probes((9092, 2181), (22,))
    assert [p.port for p in probes] == [2181, 9092, 22]
    assert declared(EAST[0], WEST[0], probes[0]) == ALLOW
    assert declared(EAST[0], WEST[0], probes[2]) is CLOSED
    assert CLOSED.satisfied_by(REFUSED) and CLOSED.satisfied_by(TIMEOUT)
    assert not CLOSED.satisfied_by(ALLOW)
    shut = Case(EAST[0], WEST[0], "tcp", 9092, ALLOW, TIMEOUT, "timed out")
    opened = Case(EAST[0], WEST[0], "tcp", 22, CLOSED, ALLOW, "connected")
    assert region_port(shut) == "east->west:9092"
    fine = Case(EAST[0], WEST[0], "tcp", 2181, ALLOW, ALLOW, "connected")
    cause = firewall_cause([shut, opened, fine])
    assert "required TCP port(s) not open: east->west:9092" in cause
    assert "other ports between these regions connect" in cause
    assert "declared-closed port(s) connect: east->west:22" in cause


def test_firewall_cause_never_says_other_ports_connect_when_none_does() -> None:
    """Contradicting data (a cut peering): every required port times out, and the
    declared-closed port passes because it times out too. Nothing connects: the path."""
    shut = [Case(EAST[0], WEST[0], "tcp", p, ALLOW, TIMEOUT, "timed out") for p in (2181, 9092)]
    closed = Case(EAST[0], WEST[0], "tcp", 22, CLOSED, TIMEOUT, "timed out")
    cause = firewall_cause([*shut, closed])
    assert "connect" not in cause.replace("no required port connects", "")
    assert cause.startswith("no required port connects east->west: the path between")
