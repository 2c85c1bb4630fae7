"""Probe parsing from real tool output, and the batch program run for real on the runner."""

from __future__ import annotations

import pytest

from netconform.command import CommandResult
from netconform.outcomes import Verdict
from netconform.probes import (
    ProbeSpec,
    decode_batch,
    encode_batch,
    interpret,
    parse_ping,
    run_batch,
)
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
SETTINGS = ProbeSettings()
PING = ProbeSpec("p", "ping", "10.102.1.2")
TCP = ProbeSpec("t", "tcp", "10.102.1.2", 8080)


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
    assert interpret(PING, result(stdout, rc=rc), SETTINGS).verdict == verdict


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
    assert interpret(TCP, result(stderr=stderr, rc=rc), SETTINGS).verdict == verdict


def test_batch_refuses_words_that_could_be_misread() -> None:
    with pytest.raises(ValueError, match="unsafe word"):
        encode_batch([ProbeSpec("x", "ping", "10.0.0.1; reboot")], SETTINGS)


def test_decode_batch_keeps_each_probe_apart() -> None:
    out = "\n@@probe a 0\nhello\n\n@@stderr\n\n@@probe b 1\n\n@@stderr\nboom\n"
    assert decode_batch(out) == {"a": (0, "hello", ""), "b": (1, "", "boom")}


def test_batch_runs_for_real_on_loopback() -> None:
    specs = [ProbeSpec("ping", "ping", "127.0.0.1"), ProbeSpec("closed", "tcp", "127.0.0.1", 1)]
    results = run_batch(RunnerVantage(), specs, SETTINGS)
    assert results["ping"].verdict == Verdict.ALLOW, results["ping"].detail
    assert results["closed"].verdict == Verdict.REFUSED, results["closed"].detail


def test_failed_exec_marks_every_probe_as_error() -> None:
    class Broken:
        name = "east/gone"

        def run(self, argv: object, stdin: str | None = None) -> CommandResult:
            return CommandResult(("sh",), 1, "", 'pods "gone" not found', self.name)

    results = run_batch(Broken(), [PING, TCP], SETTINGS)
    assert {r.verdict for r in results.values()} == {Verdict.ERROR}
    assert 'east/gone failed (rc 1): pods "gone" not found' in results["p"].detail
