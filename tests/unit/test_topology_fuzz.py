"""The loader fed mutated topologies: one line and exit 3 every time, never a traceback.

Each case starts from a valid topology and breaks it one way (a wrong type, a missing required
key, an unknown key, a huge or negative number, a bad CIDR, a duplicate name or context),
written out as YAML and loaded as a file's text is. The mutation is aimed using the loader's
own schema, so every key of every section is a target.
"""

from __future__ import annotations

import copy
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netconform.errors import TopologyError
from netconform.topology import SCHEMA, parse_topology
from netconform.topology_check import load_yaml
from netconform.topology_schema import Key, Section

SOURCE = Path("fuzz.yaml")
CASES = 2000

BASE: dict[str, Any] = {
    "name": "mrc",
    "kubeconfig": "kubeconfig",
    "clusters": [
        {
            "name": "central",
            "context": "mrc-central",
            "pod_cidrs": ["10.124.0.0/16"],
            "service_cidrs": ["172.20.0.0/16"],
            "cloud": "aws",
            "cloud_region": "ca-central-1",
            "network": {
                "id": "vpc-1",
                "cidrs": ["10.124.0.0/16"],
                "route_tables": ["rtb-1"],
                "security_groups": ["sg-1"],
            },
        },
        {"name": "east", "context": "mrc-east", "namespace": "east", "pod_cidrs": "10.125.0.0/16"},
        {"name": "west", "pod_cidrs": ["10.126.0.0/16"], "dns_zone": "west.svc.cluster.local"},
    ],
    "ports": {"required": [9092, 2181], "closed": [22]},
    "images": {"probe": "nicolaka/netshoot:v0.13"},
    "probe": {"ping_count": 3, "connect_timeout": 2.5, "icmp_tool": "fping"},
    "timeouts": {"pod_ready": 30, "exec": 12.5},
    "drift": {"rtt_ms": 5, "min_samples": 8},
    "ingress": {"canary_weight": 5, "tls_host": "secure.example"},
}

Path_ = tuple[Any, ...]


def sections(doc: Any, section: Section, path: Path_ = ()) -> Iterator[tuple[Path_, Section]]:
    """Every mapping of the document with the section it must follow."""
    yield path, section
    for key in section.keys:
        if key.section is None or key.name not in doc:
            continue
        if key.kind == "section":
            yield from sections(doc[key.name], key.section, (*path, key.name))
        else:
            for i, item in enumerate(doc[key.name]):
                yield from sections(item, key.section, (*path, key.name, i))


def keys(doc: Any) -> list[tuple[Path_, Key]]:
    """Every key present in the document, with its schema."""
    return [
        ((*path, key.name), key)
        for path, section in sections(doc, SCHEMA)
        for key in section.keys
        if key.name in get(doc, path)
    ]


def get(doc: Any, path: Path_) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def is_cidr(text: str) -> bool:
    try:
        ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        return False
    return True


_NON_STRING = st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.just([1]))
_BLANK = st.sampled_from(["", " ", "\t"])
_BAD_CIDR = st.one_of(
    st.sampled_from(["10.300.0.0/16", "10.0.0.1/16", "10.0.0.0/33", "::1/128", "10.0.0.0/-1"]),
    st.text(max_size=20).filter(lambda t: not is_cidr(t)),
)


def wrong_value(key: Key) -> st.SearchStrategy[Any]:
    """Values of the wrong type, or out of range, for one key."""
    kind = key.kind
    if kind in ("string", "path"):
        return st.one_of(_NON_STRING, _BLANK, st.just({"a": 1}))
    if kind == "text":
        return _NON_STRING
    if kind == "choice":
        return st.one_of(st.text().filter(lambda t: t not in key.choices), st.integers())
    if kind in ("integer", "number"):
        assert key.minimum is not None and key.maximum is not None
        too_big = st.integers(min_value=int(key.maximum) + 1, max_value=10**30)
        too_small = st.integers(min_value=-(10**30), max_value=int(key.minimum) - 1)
        odd = st.sampled_from([float("inf"), float("-inf"), float("nan"), True, "3", None, [3]])
        wrong = st.one_of(too_big, too_small, odd, st.floats(key.maximum + 1, 1e300))
        return st.one_of(wrong, st.just(1.5)) if kind == "integer" else wrong
    if kind == "cidrs":
        return st.one_of(_BAD_CIDR, st.lists(_BAD_CIDR, min_size=1, max_size=3), st.integers())
    if kind == "strings":
        return st.one_of(st.text(), st.just([1]), st.just([""]), st.just({"a": "b"}))
    if kind == "ports":
        bad_port = st.one_of(st.integers(max_value=0), st.integers(min_value=65536), st.text())
        return st.one_of(st.lists(bad_port, min_size=1, max_size=3), st.integers(), st.text())
    if kind == "section":
        return st.one_of(st.lists(st.integers(), max_size=2), st.text(), st.integers())
    return st.one_of(st.just([]), st.just({"a": 1}), st.text(), st.lists(st.text(), min_size=1))


@st.composite
def wrong_type(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    path, key = draw(st.sampled_from(keys(doc)))
    get(doc, path[:-1])[path[-1]] = draw(wrong_value(key))
    return doc


@st.composite
def unknown_key(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    path, section = draw(st.sampled_from(list(sections(doc, SCHEMA))))
    name = draw(
        st.one_of(st.text(min_size=1, max_size=12), st.integers(), st.booleans()).filter(
            lambda k: k not in section.names
        )
    )
    get(doc, path)[name] = draw(st.one_of(st.integers(), st.text(max_size=5), st.none()))
    return doc


@st.composite
def missing_required(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    required = [(p, s, k) for p, s in sections(doc, SCHEMA) for k in s.keys if k.required]
    path, _, key = draw(st.sampled_from(required))
    del get(doc, path)[key.name]
    return doc


@st.composite
def duplicate(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    clusters = doc["clusters"]
    i, j = draw(st.lists(st.integers(0, len(clusters) - 1), min_size=2, max_size=2, unique=True))
    attr = draw(st.sampled_from(["name", "context"]))
    # a cluster's context defaults to its name: copy the effective value
    clusters[j][attr] = clusters[i].get(attr, clusters[i]["name"])
    return doc


def mutated() -> st.SearchStrategy[dict[str, Any]]:
    base = st.builds(copy.deepcopy, st.just(BASE))
    return st.one_of(
        base.flatmap(wrong_type),
        base.flatmap(unknown_key),
        base.flatmap(missing_required),
        base.flatmap(duplicate),
    )


def load_text(text: str) -> None:
    parse_topology(load_yaml(text, str(SOURCE)), source=SOURCE)


def assert_one_line_refusal(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    with pytest.raises(TopologyError) as err:
        load_text(text)
    message = str(err.value)
    assert err.value.exit_code == 3
    assert message.startswith(f"{SOURCE}: "), message
    assert "\n" not in message and len(message) < 400, message


def test_the_base_topology_is_valid() -> None:
    load_text(yaml.safe_dump(BASE))


_cases = {"n": 0}


@settings(
    max_examples=CASES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(mutated())
def _every_mutation_is_refused_in_one_line(doc: dict[str, Any]) -> None:
    _cases["n"] += 1
    assert_one_line_refusal(doc)


def test_mutated_topologies_are_refused_in_one_line_with_exit_3() -> None:
    """At least CASES mutated topologies, in well under a minute."""
    started = time.monotonic()
    _every_mutation_is_refused_in_one_line()
    elapsed = time.monotonic() - started
    assert _cases["n"] >= CASES, _cases
    assert elapsed < 60, f"{_cases['n']} cases took {elapsed:.1f}s"


_ANY = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(keys(BASE)), _ANY)
def test_any_value_anywhere_loads_or_is_one_line(target: tuple[Path_, Key], value: Any) -> None:
    doc = copy.deepcopy(BASE)
    path, _ = target
    get(doc, path[:-1])[path[-1]] = value
    try:
        load_text(yaml.safe_dump(doc))
    except TopologyError as err:
        assert "\n" not in str(err) and err.exit_code == 3


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=200))
def test_any_text_loads_or_is_one_line(text: str) -> None:
    try:
        load_text(text)
    except TopologyError as err:
        assert "\n" not in str(err) and err.exit_code == 3
