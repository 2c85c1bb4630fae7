"""Label selectors (text and `LabelSelector` objects) and field selectors."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from provisioning.lab.apiserver.errors import bad_request
from provisioning.lab.apiserver.model import Obj

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_SET_TERM = re.compile(rf"^({_KEY})\s+(in|notin)\s+\(([^()]*)\)$")
_EQ_TERM = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)$")
_CMP_TERM = re.compile(rf"^({_KEY})\s*([<>])\s*(-?\d+)$")
_EXISTS_TERM = re.compile(rf"^(!?)\s*({_KEY})$")


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector."""

    key: str
    op: str  # in, notin, exists, !exists, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op in ("exists", "!exists"):
            return (value is not None) == (self.op == "exists")
        if self.op in ("in", "notin"):
            return (value is not None and value in self.values) == (self.op == "in")
        if value is None or not re.fullmatch(r"-?\d+", value):
            return False
        bound = int(self.values[0])
        return int(value) > bound if self.op == "gt" else int(value) < bound


Selector = tuple[Requirement, ...]


def split_terms(text: str) -> list[str]:
    """Split at commas outside parentheses."""
    terms: list[str] = []
    depth, current = 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current.strip())
    return terms


def parse_term(term: str) -> Requirement:
    """One label selector term."""
    if m := _SET_TERM.match(term):
        values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
        return Requirement(m.group(1), m.group(2), values)
    if m := _EQ_TERM.match(term):
        return Requirement(m.group(1), "notin" if m.group(2) == "!=" else "in", (m.group(3),))
    if m := _CMP_TERM.match(term):
        return Requirement(m.group(1), "gt" if m.group(2) == ">" else "lt", (m.group(3),))
    if m := _EXISTS_TERM.match(term):
        return Requirement(m.group(2), "!exists" if m.group(1) else "exists")
    raise bad_request(f"unable to parse requirement: {term!r}")


def parse_label_selector(text: str) -> Selector:
    """`a=b,c!=d,e in (f,g),!h` as requirements (AND)."""
    return tuple(parse_term(t) for t in split_terms(text))


def selector_from_spec(spec: Mapping[str, Any] | None) -> Selector:
    """A `LabelSelector` object (matchLabels, matchExpressions) as requirements."""
    spec = spec or {}
    reqs = [Requirement(k, "in", (str(v),)) for k, v in (spec.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in spec.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""), "in")
        reqs.append(Requirement(expr.get("key", ""), op, tuple(expr.get("values") or ())))
    return tuple(reqs)


def selector_matches(selector: Selector, labels: Mapping[str, str]) -> bool:
    """AND of all requirements; the empty selector matches everything."""
    return all(r.matches(labels) for r in selector)


class FieldTerm(NamedTuple):
    """One `path=value` or `path!=value` field selector term."""

    path: str
    equal: bool
    value: str


def parse_field_selector(text: str) -> tuple[FieldTerm, ...]:
    """`metadata.name=x,status.phase!=Running` as terms."""
    terms = []
    for term in split_terms(text):
        m = re.fullmatch(r"([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)", term)
        if not m:
            raise bad_request(f"invalid field selector: {term!r}")
        terms.append(FieldTerm(m.group(1), m.group(2) != "!=", m.group(3).strip()))
    return tuple(terms)


def field_value(obj: Obj, path: str) -> str:
    """The string value at a dotted path ("" when absent)."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def fields_match(terms: Iterable[FieldTerm], obj: Obj) -> bool:
    """AND of all field terms."""
    return all((field_value(obj, t.path) == t.value) == t.equal for t in terms)
