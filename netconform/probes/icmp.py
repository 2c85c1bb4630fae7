"""ICMP echo: fping reaches every destination of a source in one process; ping (iputils or
busybox) one destination per process, for images without fping (`probe.icmp_tool: ping`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from netconform.command import CommandResult
from netconform.outcomes import PingStats, Verdict, plain
from netconform.probes.base import Invocation, Observation, ProbeKind, Task, last_line, register
from netconform.topology import ProbeSettings

_FPING_SUMMARY = re.compile(r"^(\S+)\s+:\s+((?:[\d.]+|-)(?:\s+(?:[\d.]+|-))*)\s*$", re.MULTILINE)
_FPING_UNREACHABLE = re.compile(r"ICMP .*Unreachable from \S+ for ICMP Echo sent to (\S+)")
_FPING_SEND_ERROR = re.compile(r"^(\S+?):? error while sending ping: (.*)$", re.MULTILINE)


@register
class Icmp(ProbeKind):
    name = "icmp"
    tools = ("fping",)
    capabilities = frozenset({"NET_RAW"})

    def invocations(self, tasks: Sequence[Task], settings: ProbeSettings) -> list[Invocation]:
        if settings.icmp_tool == "ping":
            return super().invocations(tasks, settings)
        hosts = sorted({t.destination.ip for t in tasks})
        argv = (
            "fping",
            "-C",
            str(settings.ping_count),
            "-p",
            str(int(settings.ping_interval * 1000)),
            "-t",
            str(int(settings.ping_deadline * 1000)),
            *hosts,
        )
        return [Invocation(argv, tuple(tasks))]

    def interpret(
        self, invocation: Invocation, raw: CommandResult, settings: ProbeSettings
    ) -> dict[str, Observation]:
        if settings.icmp_tool == "ping":
            return super().interpret(invocation, raw, settings)
        return parse_fping(invocation.tasks, raw, settings)

    def argv(self, task: Task, settings: ProbeSettings) -> list[str]:
        return [
            "ping",
            "-n",
            "-q",
            "-c",
            str(settings.ping_count),
            "-i",
            f"{settings.ping_interval:g}",
            "-W",
            f"{settings.ping_deadline:g}",
            task.destination.ip,
        ]

    def parse(self, task: Task, raw: CommandResult, settings: ProbeSettings) -> Observation:
        stats = parse_ping(raw.stdout + "\n" + raw.stderr)
        if stats is None:
            return Observation(
                plain(Verdict.ERROR), f"ping gave no summary (rc {raw.rc}): {last_line(raw)}", raw
            )
        unreachable = "Unreachable" in raw.stdout + raw.stderr
        return judge(stats, unreachable, raw, settings)


def judge(
    stats: PingStats, unreachable: bool, raw: CommandResult, settings: ProbeSettings
) -> Observation:
    """ALLOW, LOSS, UNREACHABLE or TIMEOUT from the counts."""
    replies = f"{stats.received}/{stats.transmitted} replies"
    if stats.received == 0:
        verdict = Verdict.UNREACHABLE if unreachable else Verdict.TIMEOUT
        return Observation(plain(verdict), f"{replies}, {stats.loss_percent:g}% loss", raw, stats)
    detail = f"{replies}, rtt {stats.rtt_min}/{stats.rtt_avg}/{stats.rtt_max} ms"
    if stats.loss_percent > settings.max_loss_percent:
        detail += f", {stats.loss_percent:g}% loss"
        return Observation(plain(Verdict.LOSS), detail, raw, stats)
    return Observation(plain(Verdict.ALLOW), detail, raw, stats)


def parse_ping(output: str) -> PingStats | None:
    """Summary of iputils or busybox ping output; None if there is none."""
    counts = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", output)
    if counts is None:
        return None
    loss = re.search(r"([\d.]+)% packet loss", output)
    rtt = re.search(
        r"(?:rtt|round-trip) min/avg/max(?:/mdev)? = ([\d.]+)/([\d.]+)/([\d.]+)", output
    )
    return PingStats(
        transmitted=int(counts.group(1)),
        received=int(counts.group(2)),
        loss_percent=float(loss.group(1)) if loss else 100.0,
        rtt_min=float(rtt.group(1)) if rtt else None,
        rtt_avg=float(rtt.group(2)) if rtt else None,
        rtt_max=float(rtt.group(3)) if rtt else None,
    )


def fping_stats(rtts: Sequence[str]) -> PingStats:
    """PingStats from one fping `-C` summary row (`0.05 - 0.04`)."""
    values = [float(v) for v in rtts if v != "-"]
    sent = len(rtts)
    return PingStats(
        transmitted=sent,
        received=len(values),
        loss_percent=round(100.0 * (sent - len(values)) / sent, 4) if sent else 100.0,
        rtt_min=min(values) if values else None,
        rtt_avg=round(sum(values) / len(values), 3) if values else None,
        rtt_max=max(values) if values else None,
        rtts=tuple(values),
    )


def parse_fping(
    tasks: Sequence[Task], raw: CommandResult, settings: ProbeSettings
) -> dict[str, Observation]:
    """One observation per task from fping's `-C` summary (stderr) and ICMP error lines."""
    text = raw.stdout + "\n" + raw.stderr
    rows = {m.group(1): m.group(2).split() for m in _FPING_SUMMARY.finditer(raw.stderr)}
    unreachable = set(_FPING_UNREACHABLE.findall(text))
    send_errors = {m.group(1): m.group(2) for m in _FPING_SEND_ERROR.finditer(text)}
    result = {}
    for task in tasks:
        host = task.destination.ip
        own = CommandResult(
            raw.argv, raw.rc, _lines_about(raw.stdout, host), _lines_about(raw.stderr, host),
            raw.where,
        )  # fmt: skip
        if host not in rows:
            detail = (
                "fping not found in the probe image (set probe.icmp_tool: ping)"
                if raw.rc == 127
                else f"fping gave no summary for {host} (rc {raw.rc}): {last_line(raw)}"
            )
            result[task.id] = Observation(plain(Verdict.ERROR), detail, own)
            continue
        blocked = host in unreachable or "unreachable" in send_errors.get(host, "").lower()
        result[task.id] = judge(fping_stats(rows[host]), blocked, own, settings)
    return result


def _lines_about(output: str, host: str) -> str:
    """The lines of fping's output that concern `host` (each case keeps its own)."""
    return "\n".join(
        ln for ln in output.splitlines() if ln.startswith(f"{host} ") or ln.endswith(f" {host}")
    )
