"""The request side of field management: who the field manager is, and apply bodies."""

from __future__ import annotations

from typing import Any, Final

import yaml
from aiohttp import web

from provisioning.lab.apiserver.errors import bad_request

APPLY_PATCH: Final = "application/apply-patch+yaml"


def field_manager(request: web.Request) -> str:
    """`?fieldManager=`, else the client's name from its User-Agent, as a real server does."""
    explicit = request.query.get("fieldManager", "")
    if explicit:
        return explicit
    agent = request.headers.get("User-Agent", "")
    return agent.split("/", 1)[0].strip()[:128] or "unknown"


async def apply_body(request: web.Request) -> Any:
    """The applied configuration (YAML, of which JSON is a subset)."""
    try:
        return yaml.safe_load(await request.read() or b"null")
    except yaml.YAMLError as exc:
        raise bad_request(f"the applied configuration is not valid YAML: {exc}") from exc
