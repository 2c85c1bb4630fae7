"""DNS latency per region pair from dig's own statistics, and the dns checks' likely cause."""

from __future__ import annotations

from pathlib import Path

from netconform.command import CommandResult
from netconform.dnsreport import dns_cause, latency_rows
from netconform.outcomes import (
    NXDOMAIN,
    TIMEOUT,
    Answer,
    Case,
    Endpoint,
    Outcome,
    Verdict,
    dns_name,
)

STATS = (Path(__file__).with_name("samples") / "dig_a_stats.txt").read_text()


def case(src: str, zone: str, observed: Outcome, ms: int | None = 0) -> Case:
    stdout = STATS.replace("Query time: 0 msec", f"Query time: {ms} msec") if ms is not None else ""
    return Case(
        Endpoint(src, "probe-0-0", "10.101.1.10"),
        dns_name(zone, f"echo-pods.{zone}.svc.cluster.local"),
        "dns",
        0,
        Answer(Verdict.ALLOW),
        observed,
        "",
        raw=CommandResult(("dig",), 0, stdout, "", src),
    )


def test_latency_rows_median_and_max_per_pair() -> None:
    ok = Answer(Verdict.ALLOW, ("10.102.1.3",))
    cases = [case("east", "west", ok, 2), case("east", "west", ok, 8), case("east", "west", ok, 4)]
    cases += [case("west", "east", TIMEOUT, None)]
    rows, bad = latency_rows(cases, ["east", "west"])
    assert rows == (("east", "west", 3, "4", 8, 0), ("west", "east", 1, "-", "-", 1))
    assert bad == (False, True)


def test_cause_names_the_cluster_every_failed_lookup_involves() -> None:
    failed = [case("east", "west", TIMEOUT), case("central", "east", NXDOMAIN)]
    text = dns_cause(failed, ["east: kube-system/coredns-x not ready: CrashLoopBackOff: loop"])
    assert text.startswith("DNS of central, east fails for east.svc.cluster.local, west.svc")
    assert "every failed lookup involves east's DNS" in text
    assert text.endswith("; east: kube-system/coredns-x not ready: CrashLoopBackOff: loop")
    assert dns_cause([case("east", "west", Answer(Verdict.ALLOW, ("x",)))]) == ""


def test_cause_never_blames_a_zones_own_dns_when_another_cluster_resolves_it() -> None:
    """Contradicting data (a cut east<->west peering): east cannot resolve west's zone, but
    central can; west's DNS pods and load balancer answer, so they are not the cause."""
    ok = Answer(Verdict.ALLOW, ("10.102.1.3",))
    cases = [case("east", "west", TIMEOUT), case("central", "west", ok), case("west", "west", ok)]
    text = dns_cause(cases)
    assert "west.svc.cluster.local resolves from central" in text
    assert "kube-dns pods" not in text and "the path from the failing clusters" in text


def test_an_askers_own_dns_down_is_not_blamed_on_the_path() -> None:
    """Contradicting data for "the path": east fails its own names too (its DNS is down),
    while central resolves west's zone. The story is east's DNS, not the path to west."""
    ok = Answer(Verdict.ALLOW, ("10.102.1.3",))
    cases = [case("east", "east", TIMEOUT), case("east", "west", TIMEOUT),
             case("central", "west", ok), case("central", "east", TIMEOUT)]  # fmt: skip
    text = dns_cause(cases)
    assert "the path from the failing clusters" not in text
    assert "every failed lookup involves east's DNS" in text
