"""ICMP and TCP parsing from real tool output, and the batch program run for real."""

from __future__ import annotations

import pytest

from netconform.command import CommandResult
from netconform.outcomes import Verdict, pod
from netconform.probes import Invocation, Probe, Task, kind
from netconform.probes.batch import decode_batch, encode_batch, run_batch
from netconform.probes.icmp import parse_ping
from netconform.topology import ProbeSettings
from netconform.vantage import RunnerVantage

IPUTILS_OK = """PING 10.102.1.2 (10.102.1.2) 56(84) bytes of data.

--- 10.102.1.2 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 405ms
rtt min/avg/max/mdev = 0.041/0.063/0.094/0.022 ms
"""
IPUTILS_LOSS = """--- 10.102.1.2 ping statistics ---
3 packets transmitted, 2 received, 33.3333% packet loss, time 402ms
rtt min/avg/max/mdev = 0.051/0.060/0.070/0.009 ms
"""
IPUTILS_DEAD = """--- 10.102.1.2 ping statistics ---
3 packets transmitted, 0 received, 100% packet loss, time 411ms
"""
IPUTILS_UNREACHABLE = """From 10.101.0.1 icmp_seq=1 Destination Net Unreachable

--- 10.102.1.2 ping statistics ---
3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 405ms
"""
BUSYBOX_OK = """--- 10.124.0.5 ping statistics ---
3 packets transmitted, 3 packets received, 0% packet loss
round-trip min/avg/max = 65.020/65.568/66.117 ms
"""
FPING = """10.99.0.2 : [0], 64 bytes, 0.032 ms (0.032 avg, 0% loss)
10.96.0.1 : [0], timed out (NaN avg, 100% loss)
"""
FPING_ERR = """ICMP Host Unreachable from 10.99.0.2 for ICMP Echo sent to 10.96.0.1
ICMP Host Unreachable from 10.99.0.2 for ICMP Echo sent to 10.96.0.1

10.99.0.2 : 0.032 0.037 1.2
10.97.0.1 : - -
10.96.0.1 : - -
10.99.0.9 : 0.05 -
"""
SETTINGS = ProbeSettings()
PING_SETTINGS = ProbeSettings(icmp_tool="ping")
DEST = pod("west", "probe-0-0", "10.102.1.2")
PING = Task("p", Probe("icmp"), DEST)
TCP = Task("t", Probe("tcp", 8080), DEST)


def result(stdout: str = "", stderr: str = "", rc: int = 0) -> CommandResult:
    return CommandResult(("x",), rc, stdout, stderr, "east/probe-0-0")


def test_parse_iputils_and_busybox() -> None:
    ok = parse_ping(IPUTILS_OK)
    assert ok is not None
    assert (ok.transmitted, ok.received, ok.loss_percent) == (3, 3, 0.0)
    assert (ok.rtt_min, ok.rtt_avg, ok.rtt_max) == (0.041, 0.063, 0.094)
    bb = parse_ping(BUSYBOX_OK)
    assert bb is not None and bb.received == 3 and bb.rtt_max == 66.117
    assert parse_ping("ping: unknown host") is None


@pytest.mark.parametrize(
    ("stdout", "rc", "verdict"),
    [
        (IPUTILS_OK, 0, Verdict.ALLOW),
        (IPUTILS_LOSS, 0, Verdict.LOSS),
        (IPUTILS_DEAD, 1, Verdict.TIMEOUT),
        (IPUTILS_UNREACHABLE, 1, Verdict.UNREACHABLE),
        ("", 2, Verdict.ERROR),
    ],
)
def test_ping_verdicts(stdout: str, rc: int, verdict: Verdict) -> None:
    icmp = kind("icmp")
    assert icmp.parse(PING, result(stdout, rc=rc), PING_SETTINGS).outcome.verdict == verdict


def test_fping_reaches_every_destination_in_one_process() -> None:
    hosts = ["10.99.0.2", "10.97.0.1", "10.96.0.1", "10.99.0.9"]
    tasks = [Task(f"t{i}", Probe("icmp"), pod("west", f"p{i}", h)) for i, h in enumerate(hosts)]
    (inv,) = kind("icmp").invocations(tasks, SETTINGS)
    assert inv.argv[0] == "fping" and set(hosts) <= set(inv.argv)
    seen = kind("icmp").interpret(inv, result(FPING, FPING_ERR, rc=1), SETTINGS)
    verdicts = {t.destination.ip: seen[t.id].outcome.verdict for t in tasks}
    assert verdicts == {
        "10.99.0.2": Verdict.ALLOW,
        "10.97.0.1": Verdict.TIMEOUT,
        "10.96.0.1": Verdict.UNREACHABLE,
        "10.99.0.9": Verdict.LOSS,
    }
    ok = seen["t0"]
    assert ok.ping is not None and (ok.ping.received, ok.ping.rtt_max) == (3, 1.2)
    assert "3/3 replies" in ok.detail and "1/2 replies" in seen["t3"].detail


def test_missing_fping_names_the_setting() -> None:
    (inv,) = kind("icmp").invocations([PING], SETTINGS)
    seen = kind("icmp").interpret(inv, result("", "sh: fping: not found", rc=127), SETTINGS)
    assert seen["p"].outcome.verdict == Verdict.ERROR
    assert "probe.icmp_tool: ping" in seen["p"].detail


@pytest.mark.parametrize(
    ("stderr", "rc", "verdict"),
    [
        ("Connection to 10.102.1.2 8080 port [tcp/*] succeeded!", 0, Verdict.ALLOW),
        (
            "nc: connect to 10.102.1.2 port 8080 (tcp) failed: Connection refused",
            1,
            Verdict.REFUSED,
        ),
        (
            "nc: connect to 10.102.1.2 port 8080 (tcp) timed out: Operation now in progress",
            1,
            Verdict.TIMEOUT,
        ),
        (
            "nc: connect to 10.102.1.2 port 8080 (tcp) failed: No route to host",
            1,
            Verdict.UNREACHABLE,
        ),
    ],
)
def test_tcp_verdicts(stderr: str, rc: int, verdict: Verdict) -> None:
    assert kind("tcp").parse(TCP, result(stderr=stderr, rc=rc), SETTINGS).outcome.verdict == verdict


def test_batch_refuses_words_that_could_be_misread() -> None:
    bad = Task("x", Probe("icmp"), pod("west", "p", "10.0.0.1; reboot"))
    with pytest.raises(ValueError, match="unsafe word"):
        encode_batch([Invocation(("ping", bad.destination.ip), (bad,))])


def test_decode_batch_keeps_each_probe_apart() -> None:
    out = "\n@@probe a 0\nhello\n\n@@stderr\n\n@@probe b 1\n\n@@stderr\nboom\n"
    assert decode_batch(out) == {"a": (0, "hello", ""), "b": (1, "", "boom")}


def test_batch_runs_for_real_on_loopback() -> None:
    loopback = pod("", "lo", "127.0.0.1")
    tasks = [Task("ping", Probe("icmp"), loopback), Task("closed", Probe("tcp", 1), loopback)]
    for settings in (SETTINGS, PING_SETTINGS):
        results = run_batch(RunnerVantage(), tasks, settings)
        assert results["ping"].outcome.verdict == Verdict.ALLOW, results["ping"].detail
        assert results["closed"].outcome.verdict == Verdict.REFUSED, results["closed"].detail


def test_failed_exec_marks_every_probe_as_error() -> None:
    class Broken:
        name = "east/gone"

        def run(self, argv: object, stdin: str | None = None) -> CommandResult:
            return CommandResult(("sh",), 1, "", 'pods "gone" not found', self.name)

    results = run_batch(Broken(), [PING, TCP], SETTINGS)
    assert {r.outcome.verdict for r in results.values()} == {Verdict.ERROR}
    assert 'east/gone failed (rc 1): pods "gone" not found' in results["p"].detail
