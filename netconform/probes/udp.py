"""UDP round trip: one datagram to an echo server with netcat; a reply is ALLOW, silence is
TIMEOUT (dropped, or nothing answering), ICMP port unreachable is REFUSED.

UDP has no handshake, so an answer is the only proof of reachability: the probe payload is
sent on stdin and the destination must echo something back within the timeout.
"""

from __future__ import annotations

from netconform.command import CommandResult
from netconform.outcomes import Verdict, plain
from netconform.probes.base import Observation, ProbeKind, Task, register
from netconform.topology import ProbeSettings

PAYLOAD = "netconform-udp-probe"


@register
class Udp(ProbeKind):
    name = "udp"
    tools = ("nc",)

    def argv(self, task: Task, settings: ProbeSettings) -> list[str]:
        wait = f"{settings.connect_timeout:g}"
        return ["nc", "-u", "-v", "-n", "-w", wait, task.destination.ip, str(task.probe.port)]

    def stdin(self, task: Task) -> str:
        return PAYLOAD

    def parse(self, task: Task, raw: CommandResult, settings: ProbeSettings) -> Observation:
        text = (raw.stderr + "\n" + raw.stdout).lower()
        if raw.stdout.strip():
            return Observation(plain(Verdict.ALLOW), f"reply: {raw.stdout.strip()[:80]}", raw)
        if "no route" in text or "host unreachable" in text:
            return Observation(plain(Verdict.UNREACHABLE), "no route to host", raw)
        # openbsd nc -v: an ICMP port unreachable ends it with rc 1 and nothing said
        if "refused" in text or (raw.rc == 1 and not raw.stderr.strip()):
            return Observation(plain(Verdict.REFUSED), "port unreachable", raw)
        if raw.rc == 0:
            return Observation(plain(Verdict.TIMEOUT), "no reply", raw)
        return Observation(plain(Verdict.ERROR), f"nc rc {raw.rc}: {raw.stderr.strip()[:120]}", raw)
