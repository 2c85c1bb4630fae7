"""HTTP and HTTPS with curl: the status code, the Location of a redirect and the first body
line (echo servers name their pod there), or why no response came.

Ingress destinations carry a host and path: the request goes to the destination's address
with `--resolve`, so Host and SNI are the ingress host as a browser would send them.
"""

from __future__ import annotations

import json

from netconform.command import CommandResult
from netconform.outcomes import HttpStatus, Outcome, Verdict, plain
from netconform.probes.base import Observation, ProbeKind, Task, last_line, register
from netconform.topology import ProbeSettings

#: curl exit codes -> verdict (everything else is ERROR).
CURL_CODES = {
    6: (Verdict.NXDOMAIN, "could not resolve host"),
    7: (Verdict.REFUSED, "could not connect (refused or unreachable)"),
    28: (Verdict.TIMEOUT, "timed out"),
    35: (Verdict.TLS_ERROR, "TLS handshake failed"),
    51: (Verdict.TLS_ERROR, "certificate does not match the host"),
    52: (Verdict.REFUSED, "empty reply from server"),
    56: (Verdict.REFUSED, "connection reset"),
    60: (Verdict.TLS_ERROR, "certificate not trusted"),
}


@register
class Http(ProbeKind):
    name = "http"
    tools = ("curl",)
    scheme = "http"
    default_port = 80

    def argv(self, task: Task, settings: ProbeSettings) -> list[str]:
        dest, probe = task.destination, task.probe
        port = probe.port or self.default_port
        host = dest.host or dest.ip
        path = dest.path or probe.param("path", "/")
        argv = ["curl", "-sS", "-o", "-", "-w", "\\n%{json}"]
        argv += ["--connect-timeout", f"{settings.connect_timeout:g}"]
        argv += ["--max-time", f"{2 * settings.connect_timeout:g}"]
        if dest.host and dest.host != dest.ip:
            argv += ["--resolve", f"{dest.host}:{port}:{dest.ip}"]
        for header in filter(None, probe.param("headers").split(",")):
            argv += ["-H", header]  # `Name:value`, no spaces
        if self.scheme == "https" and probe.param("verify") != "true":
            argv.append("-k")
        return [*argv, f"{self.scheme}://{host}:{port}{path}"]

    def parse(self, task: Task, raw: CommandResult, settings: ProbeSettings) -> Observation:
        body, _, tail = raw.stdout.rpartition("\n")
        try:
            info = json.loads(tail)
        except ValueError:
            detail = f"curl gave no result (rc {raw.rc}): {last_line(raw)}"
            return Observation(plain(Verdict.ERROR), detail, raw)
        code = int(info.get("exitcode") or 0)
        if code == 0 or (code == 22 and info.get("http_code")):
            location = str(info.get("redirect_url") or "")
            first = body.strip().splitlines()[0][:200] if body.strip() else ""
            outcome = HttpStatus(Verdict.ALLOW, int(info.get("http_code") or 0), location, first)
            return Observation(outcome, f"HTTP {outcome.code} from {info.get('remote_ip')}", raw)
        verdict, what = CURL_CODES.get(code, (Verdict.ERROR, f"curl exit {code}"))
        return Observation(plain(verdict), f"{what}: {info.get('errormsg') or ''}".strip(), raw)

    def numbers(self, raw: CommandResult, outcome: Outcome) -> dict[str, float]:
        """`connect_ms` (the TCP handshake) and `total_ms` from curl's own timings, for a
        response that came back."""
        if not isinstance(outcome, HttpStatus):
            return {}
        try:
            info = json.loads(raw.stdout.rpartition("\n")[2])
        except ValueError:
            return {}
        found = {}
        for key, name in (("time_connect", "connect_ms"), ("time_total", "total_ms")):
            value = info.get(key) if isinstance(info, dict) else None
            if isinstance(value, int | float) and value > 0:
                found[name] = round(1000.0 * value, 3)
        return found


@register
class Https(Http):
    name = "https"
    scheme = "https"
    default_port = 443
