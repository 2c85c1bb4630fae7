"""API failures as Kubernetes `Status` objects, and field causes of 422 Invalid."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from provisioning.lab.apiserver.model import BY_KIND, Obj, Resource


class ApiError(Exception):
    """A Kubernetes API failure, answered as a `Status` object."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})

    def status(self) -> Obj:
        """The `Status` body."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


class Cause(NamedTuple):
    """One field error of a 422 Invalid."""

    field: str
    reason: str
    message: str


def object_details(res: Resource, name: str, kind: str | None = None) -> Obj:
    details: Obj = {"name": name, "kind": kind or res.plural}
    if res.group:
        details["group"] = res.group
    return details


def not_found(res: Resource, name: str) -> ApiError:
    """404 NotFound for one object."""
    return ApiError(
        404, "NotFound", f'{res.qualified} "{name}" not found', object_details(res, name)
    )


def already_exists(res: Resource, name: str) -> ApiError:
    """409 AlreadyExists."""
    message = f'{res.qualified} "{name}" already exists'
    return ApiError(409, "AlreadyExists", message, object_details(res, name))


def conflict(res: Resource, name: str) -> ApiError:
    """409 Conflict on a stale resourceVersion."""
    message = (
        f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, object_details(res, name))


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, "BadRequest", message)


def method_not_allowed() -> ApiError:
    """405 MethodNotAllowed."""
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the "
                    "requested resource")  # fmt: skip


def invalid(obj: Obj, *causes: Cause) -> ApiError:
    """422 Invalid for `obj`, one cause per bad field."""
    res = BY_KIND[obj["kind"]]
    name = obj.get("metadata", {}).get("name") or ""
    texts = [f"{c.field}: {c.message}" for c in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = object_details(res, name, res.kind)
    details["causes"] = [dict(c._asdict()) for c in causes]
    # apimachinery errors.NewInvalid: the message names the GroupKind (`Kind.group`)
    kind = f"{res.kind}.{res.group}" if res.group else res.kind
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {summary}', details)


def required(path: str, detail: str = "") -> Cause:
    """A missing field."""
    return Cause(path, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def bad_value(path: str, value: Any, detail: str) -> Cause:
    """A field with a bad value."""
    return Cause(path, "FieldValueInvalid", f"Invalid value: {json.dumps(value)}: {detail}")


def not_supported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    """A value outside an enumeration (`field.NotSupported`)."""
    values = ", ".join(json.dumps(v) for v in supported)
    return Cause(path, "FieldValueNotSupported",
                 f"Unsupported value: {json.dumps(value)}: supported values: {values}")  # fmt: skip


def forbidden_field(path: str, detail: str) -> Cause:
    """A field that may not be set or changed."""
    return Cause(path, "FieldValueForbidden", f"Forbidden: {detail}")
