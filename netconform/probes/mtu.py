"""DF ping of one size (iputils `ping -M do -s SIZE`): the packet crosses unfragmented
(ALLOW), is refused as too big (TOO_BIG, with the MTU the refusal names), or vanishes
(TIMEOUT: an MTU black hole when smaller packets cross). Parameter: `size`, the ICMP
payload in bytes (the IP packet is 28 bytes larger). A path-MTU search runs this at several
sizes, all in one batch."""

from __future__ import annotations

import re

from netconform.command import CommandResult
from netconform.outcomes import Verdict, plain
from netconform.probes.base import Observation, ProbeKind, Task, last_line, register
from netconform.probes.icmp import parse_ping
from netconform.topology import ProbeSettings

IP_ICMP_HEADERS = 28
_REFUSED_MTU = re.compile(r"(?:mtu ?= ?|mtu=)(\d+)", re.IGNORECASE)


@register
class Mtu(ProbeKind):
    name = "mtu"
    tools = ("ping",)
    capabilities = frozenset({"NET_RAW"})

    def argv(self, task: Task, settings: ProbeSettings) -> list[str]:
        size = task.probe.param("size", "1472")
        wait = f"{settings.ping_deadline:g}"
        return ["ping", "-n", "-M", "do", "-s", size, "-c", "1", "-W", wait, task.destination.ip]

    def parse(self, task: Task, raw: CommandResult, settings: ProbeSettings) -> Observation:
        text = raw.stdout + "\n" + raw.stderr
        packet = int(task.probe.param("size", "1472")) + IP_ICMP_HEADERS
        if "message too long" in text or "Frag needed" in text:
            mtu = _REFUSED_MTU.search(text)
            said = f", path says mtu {mtu.group(1)}" if mtu else ""
            return Observation(
                plain(Verdict.TOO_BIG), f"{packet}-byte DF packet refused{said}", raw
            )
        stats = parse_ping(text)
        if stats is None:
            return Observation(plain(Verdict.ERROR), f"ping rc {raw.rc}: {last_line(raw)}", raw)
        if stats.received:
            return Observation(plain(Verdict.ALLOW), f"{packet}-byte DF packet crossed", raw, stats)
        if "Unreachable" in text:
            return Observation(plain(Verdict.UNREACHABLE), "destination unreachable", raw, stats)
        return Observation(plain(Verdict.TIMEOUT), f"{packet}-byte DF packet lost", raw, stats)
