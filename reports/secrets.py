"""Secrets that must never reach a report: found where they live (`netconform.redact`), scrubbed
where they leak.

What counts: every credential in the kubeconfig (tokens, passwords, client keys and
certificates, auth-provider and exec settings), the path of every API server URL (the lab's
servers answer only under `/s/<secret>`), the lab's control token, and the values of the
runner's credential variables (`AWS_SECRET_ACCESS_KEY`, `AZURE_CLIENT_SECRET`, `*_TOKEN`...).
The sources never print them on purpose; the scrub is the second line of defence, and it
says how many it had to redact, so a leak is seen and fixed at its source.
"""

from __future__ import annotations

from pathlib import Path

from netconform.redact import (
    REDACTED,
    environment_secrets,
    kubeconfig_secrets,
    scrub_text,
    usable,
)

__all__ = [
    "REDACTED",
    "environment_secrets",
    "kubeconfig_secrets",
    "scrub_text",
    "scrub_tree",
    "usable",
]


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
