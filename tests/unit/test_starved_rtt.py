"""Honest RTTs: a batch reads the CPU pressure where its probes run; pings measured while
the node was starved of CPU are flagged `starved` in their detail and the loss/RTT table."""

from __future__ import annotations

import subprocess

from netconform.command import CommandResult
from netconform.loss import merge
from netconform.outcomes import ALLOW, TIMEOUT, Case, PingStats, pod
from netconform.probes.base import Observation
from netconform.probes.batch import BATCH_PROGRAM, decode_batch, mark_starved
from netconform.probes.cpu import CpuTime, parse_cpu
from netconform.reachability import LOSS_RTT_HEADER, loss_rtt_rows

BUSY = (
    "\n@@cpu 100.00 50.00 | some avg10=90.00 avg60=80.00 avg300=50.00 total=1000000\n"
    "@@cpu 102.00 51.00 | some avg10=95.00 avg60=85.00 avg300=55.00 total=2800000\n"
)
IDLE = (
    "\n@@cpu 100.00 50.00 | some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n"
    "@@cpu 102.00 51.00 | some avg10=0.00 avg60=0.00 avg300=0.00 total=1010000\n"
)
NO_PSI = "\n@@cpu 100.00 50.00 | \n@@cpu 101.50 51.00 | \n"
PROBE = "\n@@probe i0 0\nhello\n@@stderr\n"


def test_stall_share_is_read_from_the_batch_lines() -> None:
    busy = parse_cpu(BUSY + PROBE)
    assert busy == CpuTime(2.0, 0.9) and busy.starved
    assert "90% of the batch's 2.0 s" in busy.describe()
    idle = parse_cpu(IDLE + PROBE)
    assert idle is not None and not idle.starved and idle.stalled is not None
    no_psi = parse_cpu(NO_PSI + PROBE)
    assert no_psi == CpuTime(1.5, None) and not no_psi.starved
    assert parse_cpu(PROBE) is None


def test_the_batch_program_prints_its_cpu_lines_before_the_probes() -> None:
    done = subprocess.run(
        ["sh", "-c", BATCH_PROGRAM, "batch", "4"],
        input="i0 - echo hello\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert decode_batch(done.stdout) == {"i0": (0, "hello", "")}
    cpu = parse_cpu(done.stdout)
    assert cpu is not None and cpu.wall >= 0


def ping(starved: bool, rtt_max: float = 0.3) -> PingStats:
    return PingStats(3, 3, 0.0, 0.1, 0.2, rtt_max, starved=starved)


def test_a_starved_batch_flags_pings_whose_rtts_it_could_have_changed() -> None:
    raw = CommandResult(("fping",), 0, "", "", "pod")
    spread = Observation(ALLOW, "3/3 replies, rtt 0.1/0.2/6.1 ms", raw, ping(False, 6.1))
    tcp = Observation(ALLOW, "connected", raw)
    busy, idle = CpuTime(2.0, 0.9), CpuTime(2.0, 0.05)
    flagged = mark_starved(spread, busy)
    assert flagged.ping is not None and flagged.ping.starved
    assert "rtt spread 6.0 ms while starved of CPU (some task waited for a CPU 90%" in (
        flagged.detail
    )
    assert flagged.starved and mark_starved(tcp, busy).starved
    assert mark_starved(tcp, busy).detail == "connected"  # its timing is flagged, not its verdict
    assert mark_starved(spread, idle) == spread and not mark_starved(tcp, idle).starved
    assert merge(ping(False), ping(True)).starved


def test_clean_rtts_and_pings_without_replies_are_never_flagged() -> None:
    """The cry-wolf cases: 0.1-0.3 ms RTTs on a busy machine, and 100% loss (no RTT at all)."""
    raw = CommandResult(("fping",), 0, "", "", "pod")
    clean = Observation(ALLOW, "3/3 replies, rtt 0.1/0.2/0.3 ms", raw, ping(False))
    silent = Observation(TIMEOUT, "0/3 replies, 100% loss", raw, PingStats(3, 0, 100.0))
    busy = CpuTime(2.0, 0.9)
    assert mark_starved(clean, busy) == clean
    assert mark_starved(silent, busy) == silent and "starved" not in silent.detail


def test_the_loss_rtt_table_says_where_rtts_were_starved_and_by_how_much() -> None:
    east = [pod("east", f"p{i}", f"10.101.1.{i}") for i in range(2)]
    west = pod("west", "p0", "10.102.1.1")
    cases = [
        Case(east[0], west, "icmp", 0, ALLOW, ALLOW, "x", ping(True, 4.6)),
        Case(east[1], west, "icmp", 0, ALLOW, ALLOW, "x", ping(False)),
        Case(west, east[0], "icmp", 0, ALLOW, ALLOW, "x", ping(False)),
    ]
    rows, _ = loss_rtt_rows(cases, ["east", "west"])
    column = LOSS_RTT_HEADER.index("rtt measured")
    by_pair = {(r[0], r[1]): r[column] for r in rows}
    assert by_pair[("east", "west")] == "starved (1 of 2 pod pairs, up to +4.5 ms)"
    assert by_pair[("west", "east")] == "ok" and by_pair[("east", "east")] == "-"
