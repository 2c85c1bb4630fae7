"""Secrets never printed: the values that must not reach a message, a log line, a report or an
outcome file, found where they live and replaced wherever text is made.

What counts: every credential in a kubeconfig (tokens, passwords, client keys and certificates,
auth-provider and exec settings), the path of every API server URL (the lab's servers answer
only under `/s/<secret>`), the lab's control token, and the values of the runner's credential
variables (`AWS_SECRET_ACCESS_KEY`, `AZURE_CLIENT_SECRET`, `*_TOKEN`...).

Sources never print them on purpose (server URLs are shown as `public_url`s); this is the second
line of defence. Values are `register`ed where they are read (a kubeconfig loaded, a lab's state
read, the lab daemon's secret made), and every NetconformError's text, the lab daemon's log
lines, test reports and outcome files pass through `redact`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

REDACTED = "<redacted>"
#: credential-looking variable names of the runner's environment
_CREDENTIAL_VAR = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY|PRIVATE_KEY")
_MIN_LENGTH = 8
"""Shorter values are not treated as secrets (they would redact ordinary words)."""
MIN_PATH_SECRET = 16
"""A server path component this long is an id or a secret (the lab's is 32), not a word."""
_USER_KEYS = ("token", "password", "client-key-data", "client-certificate-data")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def kubeconfig_secrets(text: str) -> set[str]:
    """Credentials and server paths of a kubeconfig's text."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return set()
    if not isinstance(doc, dict):
        return set()
    found: set[str] = set()
    for user in doc.get("users") or []:
        auth = (user or {}).get("user") or {}
        for key in _USER_KEYS:
            if isinstance(auth.get(key), str):
                found.add(auth[key])
        for key in ("auth-provider", "exec"):
            found.update(_strings(auth.get(key)))
    for cluster in doc.get("clusters") or []:
        server = str(((cluster or {}).get("cluster") or {}).get("server") or "")
        path = server.partition("://")[2].partition("/")[2]
        found.update(part for part in path.split("/") if len(part) >= MIN_PATH_SECRET)
    return found


def environment_secrets(env: Mapping[str, str]) -> set[str]:
    return {v for k, v in env.items() if _CREDENTIAL_VAR.search(k.upper())}


def usable(secrets: Iterable[str]) -> list[str]:
    """Longest first (a secret containing another is redacted whole), short ones left out."""
    return sorted({s for s in secrets if len(s) >= _MIN_LENGTH}, key=len, reverse=True)


def scrub_text(text: str, secrets: Iterable[str]) -> tuple[str, int]:
    count = 0
    for secret in secrets:
        if secret in text:
            count += text.count(secret)
            text = text.replace(secret, REDACTED)
    return text, count


_known: set[str] = set()
_lock = threading.Lock()


def register(values: Iterable[str]) -> None:
    """Remember values (long enough to be secrets) that this process must never print."""
    found = usable(values)
    with _lock:
        _known.update(found)


def register_kubeconfig(path: Path) -> None:
    """The credentials and server paths of a kubeconfig file, if it can be read."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        register(kubeconfig_secrets(path.read_text(encoding="utf-8")))


def known() -> list[str]:
    """Registered secrets and the values of this process's credential variables."""
    with _lock:
        found = set(_known)
    return usable(found | environment_secrets(os.environ))


def redact(text: str) -> str:
    """`text` with every known secret replaced by REDACTED."""
    return scrub_text(text, known())[0]


class RedactingFilter(logging.Filter):
    """A log handler's filter: the formatted message of every record goes out redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info:  # a traceback's text too (an exception's repr may hold a URL)
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
