"""Request bodies in (JSON or protobuf, then schema validation) and answers out (JSON or
protobuf, as the client's Accept asks, with the validation's Warning headers).

`http` calls `request_body` for every write; `negotiate` is the app's middleware.
"""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web

from provisioning.lab.apiserver.errors import ApiError, bad_request
from provisioning.lab.apiserver.protobuf import ProtobufError, decode
from provisioning.lab.apiserver.protobuf_encode import encode
from provisioning.lab.apiserver.routing import Target, json_response
from provisioning.lab.apiserver.validation import mode_of, validate, warning_header

PROTOBUF: Final = "application/vnd.kubernetes.protobuf"
WARNINGS: Final = web.RequestKey("netconform_lab_warnings", list[str])
PARTIAL: Final = ("application/merge-patch+json", "application/strategic-merge-patch+json",
                  "application/apply-patch+yaml")  # fmt: skip
"""Patch types whose body is a partial object (JSON patch is a list of operations)."""


def media_types(header: str) -> list[str]:
    """The media types of a Content-Type or Accept header, without parameters."""
    return [part.split(";", 1)[0].strip().lower() for part in header.split(",") if part.strip()]


def unsupported_media(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown '
                    f'format - accepted media types include: application/json, {PROTOBUF}'
                    f" (not {content_type!r} for this request)")  # fmt: skip


def _parse(request: web.Request, raw: bytes) -> Any:
    content_type = request.headers.get("Content-Type", "")
    if PROTOBUF in media_types(content_type):
        if request.method not in ("POST", "PUT"):
            raise unsupported_media(content_type)
        try:
            return decode(raw)
        except ProtobufError as exc:
            raise bad_request(f"the protobuf body could not be decoded: {exc}") from exc
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from exc


def _claimed(body: dict[str, Any], t: Target) -> dict[str, str]:
    """The kind and version the body is checked as: its own, else what the URL serves."""
    kind, version = ("Scale", "autoscaling/v1") if t.sub == "scale" else (
        t.res.kind, t.res.api_version)  # fmt: skip
    return {"kind": body.get("kind") or kind, "apiVersion": body.get("apiVersion") or version}


def _validate(request: web.Request, t: Target, body: Any) -> None:
    content_type = media_types(request.headers.get("Content-Type", "application/json"))
    partial = request.method == "PATCH"
    if not isinstance(body, dict) or (partial and not set(content_type) & set(PARTIAL)):
        return
    mode = mode_of(request.query.getall("fieldValidation", []))
    added = {k: v for k, v in _claimed(body, t).items() if k not in body}
    body.update(added)  # the validator finds the schema by them; taken out again below
    request[WARNINGS] = []
    try:
        validate(body, mode, request[WARNINGS], partial)
    finally:
        for key in added:
            body.pop(key, None)


async def request_body(request: web.Request, t: Target) -> Any:
    """The body of a write as JSON-shaped data, checked against its kind's schema."""
    body = _parse(request, await request.read())
    _validate(request, t, body)
    return body


def _only_protobuf(request: web.Request) -> bool:
    accepted = media_types(request.headers.get("Accept", ""))
    return bool(accepted) and all(a == PROTOBUF for a in accepted)


def not_acceptable(what: str) -> web.Response:
    message = (f"only the following media types are accepted for {what}: application/json"
               " (this lab answers protobuf only for single objects and lists)")  # fmt: skip
    return json_response(ApiError(406, "NotAcceptable", message).status(), 406)


@web.middleware
async def negotiate(request: web.Request, handler: Any) -> web.StreamResponse:
    """Warning headers from validation; protobuf answers for clients that take nothing else."""
    only_protobuf = _only_protobuf(request)
    if only_protobuf and request.query.get("watch", "") in ("true", "1"):
        return not_acceptable("watch")
    response: web.StreamResponse = await handler(request)
    if not response.prepared:
        for text in request.get(WARNINGS) or []:
            response.headers.add("Warning", warning_header(text))
    if not (only_protobuf and isinstance(response, web.Response)):
        return response
    if response.content_type != "application/json" or not isinstance(response.body, bytes):
        return response
    try:
        data = encode(json.loads(response.body))
    except ProtobufError:
        return not_acceptable("this object")
    encoded = web.Response(body=data, status=response.status, content_type=PROTOBUF)
    for text in request.get(WARNINGS) or []:
        encoded.headers.add("Warning", warning_header(text))
    return encoded
