"""TLS handshake with openssl s_client: the served certificate's subject, issuer, expiry and
what the verifier says of it for the requested host (SNI and hostname check).

Parameters: `cafile` (a CA bundle path where the probe runs; default: the system's).
Ingress destinations give the host (SNI); others are asked by address.
"""

from __future__ import annotations

import re

from netconform.command import CommandResult
from netconform.outcomes import Certificate, Verdict, plain
from netconform.probes.base import Observation, ProbeKind, Task, last_line, register
from netconform.topology import ProbeSettings

_FIELD = re.compile(r"^(subject|issuer)=(.*)$", re.MULTILINE)
_NOT_AFTER = re.compile(r"NotAfter: (.+?)\s*$", re.MULTILINE)
#: seconds the handshake may take after the connect timeout, before `timeout` ends it
HANDSHAKE_SLACK = 3.0
TIMED_OUT = 124
"""`timeout`'s exit code when it ended the command."""
_VERIFY = re.compile(r"Verify return code: (\d+) \(([^)]*)\)")


@register
class Tls(ProbeKind):
    name = "tls"
    tools = ("timeout", "openssl")

    def argv(self, task: Task, settings: ProbeSettings) -> list[str]:
        dest = task.destination
        host = dest.host or dest.ip
        # s_client has no connect timeout: an unreachable address would hang it (and its
        # whole batch) for the kernel's SYN retries, ~2 minutes; coreutils/busybox timeout
        # bounds it (exit 124)
        limit = f"{settings.connect_timeout + HANDSHAKE_SLACK:g}"
        argv = ["timeout", limit, "openssl", "s_client"]
        argv += ["-connect", f"{dest.ip}:{task.probe.port or 443}"]
        argv += ["-servername", host, "-verify_hostname", host]
        cafile = task.probe.param("cafile")
        if cafile:
            argv += ["-CAfile", cafile]
        return argv

    def parse(self, task: Task, raw: CommandResult, settings: ProbeSettings) -> Observation:
        text = raw.stdout + "\n" + raw.stderr
        fields = dict(_FIELD.findall(raw.stdout))
        verify = _VERIFY.search(raw.stdout)
        if "subject" not in fields or verify is None:
            if "Connection refused" in text or "errno=111" in text:
                return Observation(plain(Verdict.REFUSED), "connection refused", raw)
            if "timed out" in text or "errno=110" in text:
                return Observation(plain(Verdict.TIMEOUT), "connect timed out", raw)
            if raw.rc == TIMED_OUT and "CONNECTED" not in raw.stdout:
                return Observation(plain(Verdict.TIMEOUT), "connect timed out", raw)
            if raw.rc == TIMED_OUT:
                return Observation(plain(Verdict.TLS_ERROR), "handshake timed out", raw)
            return Observation(plain(Verdict.TLS_ERROR), f"no handshake: {last_line(raw)}", raw)
        not_after = _NOT_AFTER.search(raw.stdout)
        verified = "ok" if verify.group(1) == "0" else verify.group(2)
        cert = Certificate(
            Verdict.ALLOW,
            subject=fields["subject"].strip(),
            issuer=fields.get("issuer", "").strip(),
            not_after=not_after.group(1) if not_after else "",
            verified=verified,
        )
        return Observation(cert, f"certificate {cert.subject}, verify: {verified}", raw)
