"""Server-side apply and field ownership (`metadata.managedFields`, FieldsV1).

Ownership is tracked per leaf field: an Apply owns the leaves of its configuration, an Update
(create, replace, patch) owns the leaves it changed. Applying a value a different manager owns
with a different value is a 409 Conflict, worded as a real API server words it, unless
`force` takes the field over. Not complete (no per-version schemas, no `x-kubernetes-list-type`
beyond the strategic-merge keys the lab knows), but exact for conflicts between managers.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Final

from provisioning.lab.apiserver.errors import ApiError
from provisioning.lab.apiserver.model import Obj
from provisioning.lab.apiserver.objects import now
from provisioning.lab.apiserver.patches import MERGE_KEYS, strategic_merge

Path = tuple[str, ...]
MISSING: Final = object()
UNTRACKED_META: Final = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp",
                         "generation", "managedFields", "selfLink", "deletionTimestamp",
                         "generateName")  # fmt: skip


def _list_key(name: str, items: list[Any]) -> str | None:
    for key in MERGE_KEYS.get(name, ()):
        if items and all(isinstance(i, dict) and key in i for i in items):
            return key
    return None


def _leaves(value: Any, prefix: Path, name: str = "") -> set[Path]:
    if isinstance(value, dict) and value:
        out: set[Path] = set()
        for k, v in value.items():
            out |= _leaves(v, (*prefix, f"f:{k}"), k)
        return out
    if isinstance(value, list) and (key := _list_key(name, value)):
        return {p for item in value
                for p in _leaves(item, (*prefix, "k:" + json.dumps({key: item[key]})))}  # fmt: skip
    return {prefix}


def field_set(obj: Obj) -> set[Path]:
    """The leaf fields of an object that ownership tracks (not status, not identity)."""
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    meta = {k: v for k, v in (body.pop("metadata", None) or {}).items() if k not in UNTRACKED_META}
    if meta:
        body["metadata"] = meta
    return _leaves(body, ()) - {()}


def value_at(obj: Any, path: Path) -> Any:
    """The value at `path`, or MISSING."""
    for step in path:
        if step.startswith("f:") and isinstance(obj, dict) and step[2:] in obj:
            obj = obj[step[2:]]
        elif step.startswith("k:") and isinstance(obj, list):
            want = json.loads(step[2:])
            obj = next((i for i in obj if isinstance(i, dict) and
                        all(i.get(k) == v for k, v in want.items())), MISSING)  # fmt: skip
        else:
            return MISSING
    return obj


def _drop(obj: Any, path: Path) -> None:
    parent = value_at(obj, path[:-1])
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        item = value_at(parent, (last,))
        if item is not MISSING:
            parent.remove(item)


def to_fields_v1(paths: set[Path]) -> Obj:
    """Nested FieldsV1 of leaf paths."""
    root: Obj = {}
    for path in sorted(paths):
        node = root
        for step in path:
            node = node.setdefault(step, {})
    return root


def from_fields_v1(fields: Obj, prefix: Path = ()) -> set[Path]:
    """Leaf paths of a FieldsV1 tree."""
    out: set[Path] = set()
    for step, sub in fields.items():
        if step == ".":
            continue
        if isinstance(sub, dict) and any(k != "." for k in sub):
            out |= from_fields_v1(sub, (*prefix, step))
        else:
            out.add((*prefix, step))
    return out


def path_text(path: Path) -> str:
    """`.spec.template.spec.containers[name="c"].image`, as conflicts name fields."""
    text = ""
    for step in path:
        if step.startswith("k:"):
            key = json.loads(step[2:])
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]"
        else:
            text += "." + step[2:]
    return text


def _entries(obj: Obj) -> list[Obj]:
    return list((obj.get("metadata") or {}).get("managedFields") or [])


def _entry(manager: str, operation: str, api_version: str, paths: set[Path]) -> Obj:
    return {"manager": manager, "operation": operation, "apiVersion": api_version,
            "time": now(), "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)}  # fmt: skip


def _set_entries(obj: Obj, entries: list[Obj]) -> None:
    kept = [e for e in entries if e.get("fieldsV1")]
    if kept:
        obj["metadata"]["managedFields"] = kept
    else:
        obj["metadata"].pop("managedFields", None)


def _assign(entries: list[Obj], mine: Obj, taken: set[Path]) -> list[Obj]:
    """`mine` replaces the same manager's entry (in place); `taken` leaves the others."""
    out, placed = [], False
    for e in entries:
        if (e.get("manager"), e.get("operation")) == (mine["manager"], mine["operation"]):
            out.append(mine)
            placed = True
        elif taken & (owned := from_fields_v1(e.get("fieldsV1") or {})):
            out.append({**e, "fieldsV1": to_fields_v1(owned - taken)})
        else:
            out.append(e)
    return out if placed else [*out, mine]


def track_update(new: Obj, old: Obj | None, manager: str) -> None:
    """An Update by `manager`: it owns what it changed, taken from the others."""
    entries = _entries(old) if old is not None else []
    before = field_set(old) if old is not None else set()
    changed = {p for p in field_set(new) | before
               if old is None or value_at(new, p) != value_at(old, p)}  # fmt: skip
    if not changed:
        _set_entries(new, entries)
        return
    current = next((e for e in entries if (e.get("manager"), e.get("operation"))
                    == (manager, "Update")), None)  # fmt: skip
    owned = from_fields_v1(current["fieldsV1"]) if current else set()
    now_present = {p for p in owned | changed if value_at(new, p) is not MISSING}
    mine = _entry(manager, "Update", new["apiVersion"], now_present)
    _set_entries(new, _assign(entries, mine, changed))


def _manager_name(entry: Obj) -> str:
    name = json.dumps(entry.get("manager", ""))
    if entry.get("operation") == "Update":
        return f"{name} using {entry.get('apiVersion', '')} at {entry.get('time', '')}"
    return name


def conflict_error(conflicts: list[tuple[Obj, Path]]) -> ApiError:
    """409 Conflict, in the API server's words."""
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {_manager_name(e)}",
               "field": path_text(p)} for e, p in conflicts]  # fmt: skip
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {_manager_name(entry)}: " + (
            path_text(path)
        )
    else:
        lines = []
        for name in sorted({_manager_name(e) for e, _ in conflicts}):
            lines.append(f"conflicts with {name}:")
            lines += [f"- {path_text(p)}" for e, p in conflicts if _manager_name(e) == name]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


def apply(live: Obj | None, applied: Obj, manager: str, force: bool) -> Obj:
    """The object after `manager` applies `applied` to `live` (None: it does not exist yet)."""
    applied = copy.deepcopy(applied)
    if isinstance(applied.get("metadata"), dict):
        applied["metadata"].pop("managedFields", None)
    mine = field_set(applied)
    if live is None:
        created = copy.deepcopy(applied)
        created.setdefault("metadata", {})["managedFields"] = [
            _entry(manager, "Apply", str(applied.get("apiVersion", "")), mine)
        ]
        return created
    entries = _entries(live)
    conflicts = [
        (e, p) for e in entries if (e.get("manager"), e.get("operation")) != (manager, "Apply")
        for p in sorted(from_fields_v1(e.get("fieldsV1") or {}) & mine)
        if value_at(live, p) != value_at(applied, p)
    ]  # fmt: skip
    if conflicts and not force:
        raise conflict_error(conflicts)
    new: Obj = strategic_merge(copy.deepcopy(live), {k: v for k, v in applied.items()
                                                     if k != "status"})  # fmt: skip
    previous = next((e for e in entries if (e.get("manager"), e.get("operation"))
                     == (manager, "Apply")), None)  # fmt: skip
    owned_before = from_fields_v1(previous["fieldsV1"]) if previous else set()
    others = set().union(*(from_fields_v1(e.get("fieldsV1") or {}) for e in entries
                           if e is not previous))  # fmt: skip
    for path in sorted(owned_before - mine - others, key=len, reverse=True):
        _drop(new, path)
    if previous is not None and owned_before == mine:
        entry = previous
    else:
        entry = _entry(manager, "Apply", str(applied.get("apiVersion", "")), mine)
    taken = {p for _, p in conflicts}
    _set_entries(new, _assign(entries, entry, taken))
    return new
