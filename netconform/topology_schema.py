"""The topology's schema as data: one model the loader validates with and the JSON Schema
file (`netconform/topology.schema.json`) and the README's reference are generated from.

A `Section` is a mapping with known keys; each `Key` says what its value must be. Sections of
the settings dataclasses are derived from the dataclasses themselves (fields, types, defaults
and attribute docstrings), so a new setting is a new field and nothing else.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import math
import textwrap
import typing
from dataclasses import dataclass
from typing import Any

#: Kinds of value a key may hold.
KINDS = (
    "string",  # a non-empty string
    "text",  # a string, empty allowed
    "integer",
    "number",
    "boolean",  # true or false
    "choice",  # one of `choices`
    "cidr",  # one IPv4 CIDR
    "cidrs",  # an IPv4 CIDR or a list of them
    "strings",  # a list of non-empty strings
    "ports",  # a list of TCP ports
    "path",  # a file path (a non-empty string)
    "section",  # a nested mapping
    "sections",  # a non-empty list of mappings
)
#: Largest value of a number without a range of its own (a day in seconds; no count is larger).
DEFAULT_MAXIMUM = 86400.0
CIDR_PATTERN = (
    r"^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
    r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/(3[0-2]|[12]?[0-9])$"
)


@dataclass(frozen=True)
class Key:
    """One key of a section and what its value must be."""

    name: str
    kind: str
    description: str = ""
    required: bool = False
    default: Any = None
    """The default as written in YAML (None: none, or derived from another key)."""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    section: Section | None = None
    """The nested section of a `section` or `sections` key."""
    unique: bool = False
    """Within a `sections` list, no two items may have the same value (names, contexts)."""


@dataclass(frozen=True)
class Section:
    """A mapping whose keys are all known; any other key is refused."""

    title: str
    keys: tuple[Key, ...]
    description: str = ""

    def key(self, name: str) -> Key | None:
        for key in self.keys:
            if key.name == name:
                return key
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)


def attribute_docs(cls: type[Any]) -> dict[str, str]:
    """The docstring under each attribute of a class body (PEP 257 attribute docstrings)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def section_of(
    cls: type[Any],
    ranges: dict[str, tuple[float, float | None]],
    choices: dict[str, tuple[str, ...]],
    overrides: dict[str, Key] | None = None,
) -> Section:
    """A section with one key per dataclass field; `overrides` replace derived keys."""
    hints = typing.get_type_hints(cls)
    docs = attribute_docs(cls)
    keys = []
    for item in dataclasses.fields(cls):
        if overrides and item.name in overrides:
            keys.append(overrides[item.name])
            continue
        keys.append(_key_of(item, hints[item.name], docs.get(item.name, ""), ranges, choices))
    doc = " ".join((cls.__doc__ or "").split())
    return Section(cls.__name__, tuple(keys), doc)


def _key_of(
    item: dataclasses.Field[Any],
    hint: Any,
    doc: str,
    ranges: dict[str, tuple[float, float | None]],
    choices: dict[str, tuple[str, ...]],
) -> Key:
    required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
    default = None if item.default is dataclasses.MISSING else item.default
    if isinstance(default, tuple):
        default = list(default)
    name = item.name
    hint = getattr(hint, "__supertype__", hint)  # NewType("ClusterName", str) is a str
    if name in choices:
        return Key(name, "choice", doc, required, default, choices=choices[name])
    if hint is bool:
        return Key(name, "boolean", doc, required, default)
    if hint in (int, float):
        low, high = ranges.get(name, (1, None))
        high = DEFAULT_MAXIMUM if high is None else high
        kind = "integer" if hint is int else "number"
        return Key(name, kind, doc, required, default, minimum=low, maximum=high)
    if hint is str:
        kind = "text" if default == "" else "string"
        return Key(name, kind, doc, required, default)
    if hint == tuple[str, ...]:
        kind = "cidrs" if name.endswith("cidrs") else "strings"
        return Key(name, kind, doc, required, default)
    raise TypeError(f"{name}: no schema kind for {hint!r}: give it an override")


def is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
