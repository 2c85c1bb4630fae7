"""Every write checked against the published Kubernetes schema of the version it claims.

The schemas are the `kubernetes-validate` package's (the OpenAPI of Kubernetes 1.37 as JSON
Schema, strict variant: `additionalProperties: false`), one compiled validator per kind and
version, built on first use and kept. What a real API server does with what they find:

- an unknown or misspelled field follows the request's `fieldValidation`: `Strict` (kubectl's
  default) refuses with 400 `strict decoding error: unknown field "spec.contianers"`; `Warn`
  (the server's default, so also the Python client's) answers a `Warning: 299` header per
  field and stores the object without it; `Ignore` drops it silently;
- a value of the wrong type is a decoding error: 400 `... cannot unmarshal string into Go
  struct field ... of type int32`, naming the field, whatever `fieldValidation` says;
- a missing required field is 422 Invalid with a `FieldValueRequired` cause naming it.

Patches are partial objects: their fields and types are checked (strategic-merge directives
such as `$setElementOrder/containers` are not fields), required fields are not.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any, Final, NamedTuple

import jsonschema
import kubernetes_validate
from referencing import Registry, Resource

from provisioning.lab.apiserver.errors import ApiError, invalid, required
from provisioning.lab.apiserver.model import BY_KIND, Obj

SCHEMA_DIR: Final = "kubernetes-json-schema/v1.37.0-local-strict"
MODES: Final = ("Strict", "Warn", "Ignore")
GO_TYPES: Final = {"integer": "int32", "string": "string", "boolean": "bool", "array": "slice",
                   "object": "map[string]interface {}", "number": "float64"}  # fmt: skip


JSON_NAMES: Final = {"str": "string", "dict": "object", "list": "array", "bool": "bool",
                     "NoneType": "null"}  # fmt: skip


class Findings(NamedTuple):
    """What one check found: unknown field paths, type errors, missing field paths."""

    unknown: list[str]
    types: list[str]
    missing: list[str]


def _schema_file(name: str) -> Any:
    path = resources.files(kubernetes_validate).joinpath(f"{SCHEMA_DIR}/{name}")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


@functools.cache
def _registry() -> Registry[Any]:
    definitions = Resource.from_contents(_schema_file("_definitions.json"))
    return definitions @ Registry()


@functools.cache
def validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
    """The compiled validator of one kind and version (None when no schema is published)."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = _schema_file(f"{kind.lower()}-{group_version}.json")
    if schema is None:
        return None
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def field_path(parts: Iterable[Any]) -> str:
    """`spec.containers[0].name` from a JSON path."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _type_error(error: jsonschema.ValidationError) -> str:
    path = field_path(error.absolute_path)
    got = JSON_NAMES.get(type(error.instance).__name__, "number")  # as Go's decoder names it
    wanted = error.validator_value if error.validator == "type" else "string or integer"
    if isinstance(wanted, list):
        wanted = next((w for w in wanted if w != "null"), "object")
    go_type = GO_TYPES.get(str(wanted), str(wanted))
    return f"json: cannot unmarshal {got} into Go struct field {path} of type {go_type}"


def check(obj: Obj, partial: bool = False) -> tuple[Findings, list[tuple[Obj, str]]]:
    """Findings for one object, and (container, key) of each unknown field (to drop it)."""
    found = Findings([], [], [])
    drops: list[tuple[Obj, str]] = []
    check_with = validator(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if check_with is None:
        return found, drops
    for error in list(check_with.iter_errors(obj)):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {})
            for key in sorted(error.instance):
                if key not in known and not (partial and key.startswith("$")):
                    found.unknown.append(field_path([*path, key]))
                    drops.append((error.instance, key))
        elif error.validator in ("type", "oneOf"):
            found.types.append(_type_error(error))
        elif error.validator == "required" and not partial and path[:1] != ["status"]:
            # a write's status is the server's to fill (reviews, pods): never required of it
            missing = [r for r in error.validator_value if r not in error.instance]
            found.missing.extend(field_path([*path, r]) for r in missing)
    return found, drops


def mode_of(values: Sequence[str]) -> str:
    """The request's `fieldValidation` (Warn when absent, as a real server); 400 otherwise."""
    mode = values[-1] if values else "Warn"
    if mode not in MODES:
        raise ApiError(400, "BadRequest", f'fieldValidation parameter unsupported: "{mode}"'
                       f" (supported values are Ignore, Warn, Strict)")  # fmt: skip
    return mode


def _decode_prefix(obj: Obj, partial: bool) -> str:
    kind, version = obj.get("kind", ""), obj.get("apiVersion", "")
    if partial:
        return ""
    return f'{kind} in version "{version.rsplit("/", 1)[-1]}" cannot be handled as a {kind}: '


def validate(obj: Obj, mode: str, warnings: list[str], partial: bool = False) -> None:
    """Check `obj`, dropping unknown fields unless Strict; appends the warnings to answer
    (before raising too: a real server sends them with its 422). Raises 400 (unknown fields
    under Strict, wrong types) or 422 (missing required fields)."""
    found, drops = check(obj, partial)
    if found.types:
        raise ApiError(400, "BadRequest", _decode_prefix(obj, partial) + found.types[0])
    if found.unknown and mode == "Strict":
        fields = ", ".join(f'unknown field "{f}"' for f in found.unknown)
        raise ApiError(400, "BadRequest", f"{_decode_prefix(obj, partial)}strict decoding error: "
                       f"{fields}")  # fmt: skip
    for container, key in drops:
        container.pop(key, None)
    if mode == "Warn":
        warnings.extend(f'unknown field "{f}"' for f in found.unknown)
    if found.missing and obj.get("kind") in BY_KIND:
        raise invalid(obj, *(required(path) for path in found.missing))


def warning_header(text: str) -> str:
    """One `Warning` header value (RFC 7234 form, as a real server writes it)."""
    return "299 - " + json.dumps(text)
