"""DNS lookup with dig: the answer's records, NXDOMAIN, SERVFAIL, REFUSED or no answer.

Parameters: `server` (default: the source's resolv.conf), `port`, `tcp` ("true"),
`search` ("true": resolve with the search path, as `dig +search` and applications do).
The destination is a dns-name endpoint: its name and the record type asked. The detail ends
with dig's own `query time N ms` (its `;; Query time:` line), read back by `query_time_ms`.
"""

from __future__ import annotations

import re

from netconform.command import CommandResult
from netconform.outcomes import Answer, Outcome, Verdict, plain
from netconform.probes.base import Observation, ProbeKind, Task, last_line, register
from netconform.topology import ProbeSettings

_STATUS = re.compile(r"->>HEADER<<- opcode: \w+, status: (\w+)")
_RECORD = re.compile(r"^(\S+)\s+\d+\s+IN\s+(\w+)\s+(.+?)\s*$", re.MULTILINE)
_QUERY_TIME = re.compile(r"^;; Query time: (\d+) msec", re.MULTILINE)
_SERVER = re.compile(r"^;; (?:SERVER: |communications error to )([^#\s]+)#", re.MULTILINE)
_RCODES = {"NXDOMAIN": Verdict.NXDOMAIN, "SERVFAIL": Verdict.SERVFAIL, "REFUSED": Verdict.REFUSED}


@register
class Dns(ProbeKind):
    name = "dns"
    tools = ("dig",)

    def argv(self, task: Task, settings: ProbeSettings) -> list[str]:
        probe, dest = task.probe, task.destination
        argv = ["dig", f"+time={max(1, round(settings.connect_timeout))}", "+tries=1"]
        argv += ["+nocmd", "+noquestion"]
        if probe.param("tcp") == "true":
            argv.append("+tcp")
        if probe.param("search") == "true":
            argv.append("+search")
        server = probe.param("server")
        if server:
            argv.append(f"@{server}")
        if probe.port:
            argv += ["-p", str(probe.port)]
        return [*argv, dest.name, dest.record or "A"]

    def parse(self, task: Task, raw: CommandResult, settings: ProbeSettings) -> Observation:
        seen = self._parse(task, raw)
        server = _SERVER.search(raw.stdout)
        took = query_time_ms(raw.stdout)
        detail = seen.detail
        if server is not None:  # which server answered, or did not: the report names it
            detail += f" (server {server.group(1)})"
        if took is not None:
            detail += f", query time {took} ms"
        return Observation(seen.outcome, detail, raw)

    def numbers(self, raw: CommandResult, outcome: Outcome) -> dict[str, float]:
        """`dns_ms`: dig's query time, when it got an answer."""
        took = query_time_ms(raw.stdout)
        return {"dns_ms": float(took)} if took is not None else {}

    def _parse(self, task: Task, raw: CommandResult) -> Observation:
        status = _STATUS.search(raw.stdout)
        if status is None:
            text = raw.stdout + raw.stderr
            if "connection refused" in text:
                return Observation(plain(Verdict.REFUSED), "nothing listens on the server", raw)
            if "timed out" in text or "no servers could be reached" in text:
                return Observation(plain(Verdict.TIMEOUT), "no answer", raw)
            if raw.rc == 127:
                return Observation(plain(Verdict.ERROR), "dig not found in the probe image", raw)
            return Observation(plain(Verdict.ERROR), f"dig rc {raw.rc}: {last_line(raw)}", raw)
        rcode = status.group(1)
        if rcode in _RCODES:
            return Observation(plain(_RCODES[rcode]), f"status {rcode}", raw)
        wanted = task.destination.record or "A"
        records = tuple(
            value.rstrip(".") if wanted != "SRV" else value
            for _, rtype, value in _RECORD.findall(raw.stdout)
            if rtype == wanted
        )
        if not records:
            return Observation(
                Answer(Verdict.ALLOW, ()), f"status {rcode}, no {wanted} record", raw
            )
        return Observation(
            Answer(Verdict.ALLOW, records), f"{len(records)} {wanted} record(s)", raw
        )


def query_time_ms(stdout: str) -> int | None:
    """dig's `;; Query time: N msec` (None when dig printed no statistics)."""
    found = _QUERY_TIME.search(stdout)
    return int(found.group(1)) if found else None
