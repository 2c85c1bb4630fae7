"""TCP connect with netcat (openbsd or busybox): accepted, refused, unreachable or silent."""

from __future__ import annotations

from netconform.command import CommandResult
from netconform.outcomes import Verdict, plain
from netconform.probes.base import Observation, ProbeKind, Task, register
from netconform.topology import ProbeSettings


@register
class Tcp(ProbeKind):
    name = "tcp"
    tools = ("nc",)

    def argv(self, task: Task, settings: ProbeSettings) -> list[str]:
        return [
            "nc",
            "-z",
            "-v",
            "-n",
            "-w",
            f"{settings.connect_timeout:g}",
            task.destination.ip,
            str(task.probe.port),
        ]

    def parse(self, task: Task, raw: CommandResult, settings: ProbeSettings) -> Observation:
        return connect_outcome(raw)


def connect_outcome(raw: CommandResult) -> Observation:
    """The verdict of an nc connect (TCP, or UDP with a payload) from its rc and messages."""
    text = (raw.stderr + "\n" + raw.stdout).lower()
    if raw.rc == 0:
        return Observation(plain(Verdict.ALLOW), "connected", raw)
    if "refused" in text:
        return Observation(plain(Verdict.REFUSED), "connection refused", raw)
    if "no route" in text or "unreachable" in text:
        return Observation(plain(Verdict.UNREACHABLE), "no route to host", raw)
    if "timed out" in text or "in progress" in text:
        return Observation(plain(Verdict.TIMEOUT), "connect timed out", raw)
    detail = f"nc rc {raw.rc}: {raw.stderr.strip()[:120]}"
    return Observation(plain(Verdict.ERROR), detail, raw)
