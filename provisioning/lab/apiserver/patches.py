"""Merge patch (RFC 7386), strategic merge patch and JSON patch (RFC 6902)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from provisioning.lab.apiserver.errors import ApiError, bad_request
from provisioning.lab.apiserver.model import Obj


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


MERGE_KEYS: Final = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "ports": ("containerPort", "port"),
    "conditions": ("type",),
    "containerStatuses": ("name",),
    "imagePullSecrets": ("name",),
    "ownerReferences": ("uid",),
}


def _merge_key(name: str, items: list[Any]) -> str | None:
    """The strategic-merge key of list `name`, if every item carries it."""
    for key in MERGE_KEYS.get(name, ()):
        if items and all(isinstance(i, dict) and key in i for i in items):
            return key
    return None


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _merge_list(name: str, old: list[Any], new: list[Any]) -> list[Any]:
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in new):
        return [_strip_directives(i) for i in new if not (isinstance(i, dict) and "$patch" in i)]
    key = _merge_key(name, [i for i in new if not (isinstance(i, dict) and "$patch" in i)] + old)
    if key is None:
        return [_strip_directives(i) for i in new]
    result = copy.deepcopy(old)
    for item in new:
        index = next((n for n, o in enumerate(result) if o.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def strategic_merge(target: Any, patch: Any) -> Any:
    """Strategic merge patch for the lists this server knows (merge keys), else merge patch."""
    if not isinstance(patch, dict):
        return _strip_directives(copy.deepcopy(patch))
    if patch.get("$patch") == "replace":
        return _strip_directives(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name) or [] if v not in value]
        elif key.startswith("$"):
            continue
        elif value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        else:
            result[key] = strategic_merge(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str]) -> tuple[Any, str]:
    for token in tokens[:-1]:
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc, tokens[-1]


def _ptr_get(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


def _ptr_add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, last = _parent(doc, tokens)
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        parent[last] = value
    return doc


def _ptr_remove(doc: Any, tokens: list[str]) -> Any:
    parent, last = _parent(doc, tokens)
    value = parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)
    return value


def _json_patch_op(doc: Any, op: Mapping[str, Any]) -> Any:
    kind, tokens = op.get("op"), _pointer(str(op.get("path", "")))
    if kind == "add":
        return _ptr_add(doc, tokens, copy.deepcopy(op.get("value")))
    if kind == "remove":
        _ptr_remove(doc, tokens)
        return doc
    if kind == "replace":
        _ptr_get(doc, tokens)
        if tokens:
            _ptr_remove(doc, tokens)
        return _ptr_add(doc, tokens, copy.deepcopy(op.get("value")))
    if kind in ("move", "copy"):
        source = _pointer(str(op.get("from", "")))
        value = _ptr_remove(doc, source) if kind == "move" else copy.deepcopy(_ptr_get(doc, source))
        return _ptr_add(doc, tokens, value)
    if kind == "test":
        if _ptr_get(doc, tokens) != op.get("value"):
            raise ApiError(422, "Invalid", f"testing value at {op.get('path')} failed")
        return doc
    raise bad_request(f"unknown JSON patch operation {kind!r}")


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch."""
    if not isinstance(ops, list):
        raise bad_request("a JSON patch must be a list of operations")
    try:
        for op in ops:
            doc = _json_patch_op(doc, op)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
        raise ApiError(422, "Invalid", f"the JSON patch could not be applied: {exc!r}") from exc
    return doc


def apply_patch(doc: Obj, patch: Any, content_type: str) -> Obj:
    """Apply a patch by its content type (strategic merge, merge or JSON patch)."""
    if content_type.startswith("application/json-patch+json"):
        result = json_patch(doc, patch)
    elif not isinstance(patch, dict):
        raise bad_request("a merge patch must be a JSON object")
    elif content_type.startswith("application/merge-patch+json"):
        result = merge_patch(doc, patch)
    elif content_type.startswith(("application/strategic-merge-patch+json", "application/json")):
        result = strategic_merge(doc, patch)
    else:
        raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown "
                       f"format - accepted media types include: application/json-patch+json, "
                       f"application/merge-patch+json, application/strategic-merge-patch+json "
                       f"(got {content_type})")  # fmt: skip
    if not isinstance(result, dict):
        raise bad_request("the patch did not produce an object")
    return result
