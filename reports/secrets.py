"""Secrets that must never reach a report: found where they live, scrubbed where they leak.

What counts: every credential in the kubeconfig (tokens, passwords, client keys and
certificates, auth-provider and exec settings), the path of every API server URL (the lab's
servers answer only under `/s/<secret>`), the lab's control token, and the values of the
runner's credential variables (`AWS_SECRET_ACCESS_KEY`, `AZURE_CLIENT_SECRET`, `*_TOKEN`...).
The sources never print them on purpose; the scrub is the second line of defence, and it
says how many it had to redact, so a leak is seen and fixed at its source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

REDACTED = "<redacted>"
#: credential-looking variable names of the runner's environment
_CREDENTIAL_VAR = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY|PRIVATE_KEY")
_MIN_LENGTH = 8
"""Shorter values are not treated as secrets (they would redact ordinary words)."""
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
        found.update(part for part in path.split("/") if part not in ("s", "viewer", ""))
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


def scrub_tree(root: Path, secrets: list[str]) -> int:
    """Redact `secrets` in every text file under `root` (in place); how many were found."""
    if not secrets or not root.exists():
        return 0
    total = 0
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # images and other binary attachments carry no text to leak
        clean, count = scrub_text(text, secrets)
        if count:
            path.write_text(clean, encoding="utf-8")
            total += count
    return total
