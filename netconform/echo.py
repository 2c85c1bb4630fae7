"""What an echo backend's answer says about who served it, read the same for every echo the
suites deploy: the lab's echo server (JSON naming pod, region, track, the client and the
request, on any path) and agnhost on real clusters (`serve-hostname` answers the pod's name
alone; `netexec` does on `ECHO_PATH`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

ECHO_PATH = "/hostname"
"""The path on which agnhost `netexec` answers its pod's name (test/images/agnhost/netexec/
netexec.go, `addRoutes` and `hostnameHandler`) and the lab's echo its JSON: a probe asking
there learns the backend from either (`Probe("http", 80, params=(("path", ECHO_PATH),))`)."""


@dataclass(frozen=True)
class EchoAnswer:
    """The backend that answered a request, as far as its answer tells."""

    pod: str
    track: str = ""
    """`stable` or `canary` where the pod carries a `track` label (the lab's echo)."""
    client: str = ""
    """The client address the backend saw."""
    forwarded_for: str = ""
    """X-Forwarded-For as the backend received it (the client an ingress controller saw)."""


def parse_echo(body: str) -> EchoAnswer | None:
    """The answer of an echo backend, or None when `body` is not one (an nginx error page,
    an empty body)."""
    text = body.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            doc = json.loads(text.splitlines()[0])
        except ValueError:
            return None
        if not isinstance(doc, dict) or not doc.get("pod"):
            return None
        return EchoAnswer(
            str(doc["pod"]),
            str(doc.get("track", "")),
            str(doc.get("client", "")),
            str(doc.get("x_forwarded_for", "")),
        )
    first = text.splitlines()[0].strip()
    # serve-hostname: one DNS label, the pod's name; anything else (HTML) is not an echo
    if first and len(first) <= 253 and all(c.isalnum() or c in "-." for c in first):
        return EchoAnswer(first)
    return None
