"""URL parsing, verbs, identity (lab secret, viewer) and small response helpers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from aiohttp import web

from provisioning.lab.apiserver.errors import ApiError, method_not_allowed, object_details
from provisioning.lab.apiserver.model import GROUPS, RESOURCES, Obj, Resource


class Target(NamedTuple):
    """What a resource URL names."""

    res: Resource
    namespace: str | None
    name: str | None
    sub: str


NO_ROUTE: Final = "the server could not find the requested resource"


def parse_target(path: str) -> Target:
    """`/api/v1/namespaces/NS/pods/NAME/exec` and friends; 404 ApiError otherwise."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis" and parts[2] == "v1" and parts[1] in GROUPS:
        group, rest = parts[1], parts[3:]
    else:
        raise ApiError(404, "NotFound", NO_ROUTE)
    namespaced = (
        len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize")
    )
    namespace, rest = (rest[1], rest[2:]) if namespaced else (None, rest)
    res = next((r for r in RESOURCES if r.group == group and rest and r.plural == rest[0]), None)
    if res is None or len(rest) > 3 or (namespaced and not res.namespaced):
        raise ApiError(404, "NotFound", NO_ROUTE)
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    return Target(res, namespace, name, sub)


SUBRESOURCES: Final = {
    "Pod": ("status", "exec", "attach", "log", "portforward"),
    "Deployment": ("status", "scale"),
}


def verb_of(method: str, target: Target, query: Mapping[str, str]) -> str:
    """The API verb of a request (or a subresource action: exec, attach, log)."""
    if target.sub:
        allowed = SUBRESOURCES.get(target.res.kind, ("status",) if target.res.has_status else ())
        if target.sub not in allowed:
            raise ApiError(404, "NotFound", NO_ROUTE)
        if target.sub in ("exec", "attach", "log", "portforward"):
            ok = method in ("GET", "POST") if target.sub != "log" else method == "GET"
            if not ok:
                raise method_not_allowed()
            return target.sub
    watching = query.get("watch", "") in ("true", "1")
    if target.name is None:
        verbs = {"GET": "watch" if watching else "list", "POST": "create",
                 "DELETE": "deletecollection"}  # fmt: skip
    else:
        verbs = {"GET": "watch" if watching else "get", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}  # fmt: skip
    if method not in verbs or (target.sub and verbs[method] not in ("get", "update", "patch")):
        raise method_not_allowed()
    return verbs[method]


def bearer_token(request: web.Request) -> str:
    """The request's bearer token ("" when none)."""
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else ""


def forbidden(target: Target, verb: str, user: str) -> ApiError:
    """403 Forbidden for a read-only user."""
    res = target.res
    what = f'{res.qualified} "{target.name}"' if target.name else res.qualified
    resource = res.plural + (f"/{target.sub}" if target.sub else "")
    action = "create" if verb in ("exec", "attach", "portforward") else verb
    where = f' in the namespace "{target.namespace}"' if target.namespace else ""
    message = (f'{what} is forbidden: User "{user}" cannot {action} resource "{resource}" in API '
               f'group "{res.group}"{where}')  # fmt: skip
    return ApiError(403, "Forbidden", message, object_details(res, target.name or ""))


VIEWER_PREFIX: Final = "/viewer"


def strip_secret(path: str, secret: str) -> tuple[str, bool]:
    """(path without `/s/<secret>`, whether it had it; always True without a secret)."""
    if not secret:
        return path, True
    prefix = f"/s/{secret}"
    if path == prefix or path.startswith(prefix + "/"):
        return path[len(prefix) :] or "/", True
    return path, False


def strip_viewer_prefix(path: str) -> tuple[str, bool]:
    """(path without `/viewer`, whether it had it). kubectl sends no bearer token to a plain
    http server, so viewer contexts name the identity in the server URL instead."""
    if path == VIEWER_PREFIX or path.startswith(VIEWER_PREFIX + "/"):
        return path[len(VIEWER_PREFIX) :] or "/", True
    return path, False


def json_response(body: Any, status: int = 200) -> web.Response:
    """Compact JSON."""
    data = json.dumps(body, separators=(",", ":")).encode()
    return web.Response(body=data, status=status, content_type="application/json")


def success_status(res: Resource, obj: Obj) -> Obj:
    """The Status answered for a completed delete."""
    details = object_details(res, obj["metadata"]["name"])
    details["uid"] = obj["metadata"].get("uid", "")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}  # fmt: skip
