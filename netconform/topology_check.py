"""Reading a topology document against its schema (`topology_schema`): YAML with the line of
every key, then every key of every section checked before anything is built from it.

Every refusal is one TopologyError line naming the file, the key's path, its line and what was
expected: `topology.yaml: unknown key 'contxt' in clusters[1] (line 12): did you mean 'context'?`
"""

from __future__ import annotations

import difflib
import ipaddress
from typing import Any

import yaml

from netconform.errors import TopologyError
from netconform.topology_schema import Key, Section, is_finite_number


class LineMap(dict[Any, Any]):
    """A YAML mapping that remembers the line of each of its keys (and of itself)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int]] = []


class LineList(list[Any]):
    """A YAML sequence that remembers the line of each of its items."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []


class _LineLoader(yaml.SafeLoader):
    """yaml's SafeLoader, building LineMap and LineList instead of dict and list."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> LineMap:
    loader.flatten_mapping(node)  # `<<: *anchor` merges
    result = LineMap(node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        line = key_node.start_mark.line + 1
        if key in result:
            result.duplicates.append((key, line))
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = line
    return result


def _construct_list(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(node.start_mark.line + 1)
    for item in node.value:
        result.append(loader.construct_object(item, deep=True))
        result.lines.append(item.start_mark.line + 1)
    return result


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_list)


def load_yaml(text: str, source: str) -> Any:
    """The document, with lines; malformed YAML as one TopologyError line."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise TopologyError(f"{source}:{where} malformed YAML: {problem}") from None
    except RecursionError:
        raise TopologyError(f"{source}: malformed YAML: nested too deeply") from None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


class Checker:
    """Checks values against schema keys and converts them (lists to tuples, ints to floats
    where a number is expected); remembers the line of every path it checked."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[str, int] = {}

    def fail(self, where: str, line: int, expected: str, got: Any) -> None:
        at = f"{where or '<root>'} (line {line})" if line else where or "<root>"
        raise TopologyError(f"{self.source}: {at}: expected {expected}, got {_show(got)}")

    def section(self, value: Any, section: Section, where: str, line: int) -> dict[str, Any]:
        """The section's keys, checked and converted; unknown and missing keys refused."""
        if not isinstance(value, dict):
            self.fail(where, line, "a mapping", value)
        lines: dict[Any, int] = getattr(value, "lines", {})
        inside = f"in {where}" if where else "at the top level"
        for key, key_line in getattr(value, "duplicates", ()):
            raise TopologyError(f"{self.source}: duplicate key {key!r} {inside} (line {key_line})")
        for key in value:
            if not isinstance(key, str) or section.key(key) is None:
                raise TopologyError(
                    f"{self.source}: unknown key {_show(key)} {inside} "
                    f"(line {lines.get(key, line)}): {_hint(key, section)}"
                )
        result: dict[str, Any] = {}
        for key in section.keys:
            path = _join(where, key.name)
            if key.name not in value:
                if key.required:
                    raise TopologyError(
                        f"{self.source}: {path}: missing required key "
                        f"({where or 'the top level'}, line {line})"
                    )
                continue
            self.lines[path] = lines.get(key.name, line)
            result[key.name] = self.value(value[key.name], key, path, self.lines[path])
        return result

    def value(self, value: Any, key: Key, where: str, line: int) -> Any:
        check = getattr(self, f"_{key.kind}")
        return check(value, key, where, line)

    def _string(self, value: Any, key: Key, where: str, line: int) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, line, "a non-empty string", value)
        return str(value)

    _path = _string

    def _text(self, value: Any, key: Key, where: str, line: int) -> str:
        if not isinstance(value, str):
            self.fail(where, line, "a string", value)
        return str(value)

    def _choice(self, value: Any, key: Key, where: str, line: int) -> str:
        if value not in key.choices or not isinstance(value, str):
            self.fail(where, line, f"one of {', '.join(key.choices)}", value)
        return str(value)

    def _integer(self, value: Any, key: Key, where: str, line: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, line, "an integer", value)
        self._in_range(value, key, where, line)
        return int(value)

    def _number(self, value: Any, key: Key, where: str, line: int) -> float:
        if not is_finite_number(value):
            self.fail(where, line, "a number", value)
        self._in_range(value, key, where, line)
        return float(value)

    def _boolean(self, value: Any, key: Key, where: str, line: int) -> bool:
        if not isinstance(value, bool):
            self.fail(where, line, "true or false", value)
        return bool(value)

    def _cidr(self, value: Any, key: Key, where: str, line: int) -> str:
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            return str(ipaddress.IPv4Network(value, strict=True))
        except ValueError:
            self.fail(where, line, "an IPv4 CIDR like 10.0.0.0/16", value)
            raise  # unreachable: fail raises

    def _in_range(self, value: float, key: Key, where: str, line: int) -> None:
        low, high = key.minimum, key.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            self.fail(where, line, f"a number {bounds}", value)

    def _cidrs(self, value: Any, key: Key, where: str, line: int) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            self.fail(where, line, "a list of IPv4 CIDRs", value)
        result = []
        for i, item in enumerate(items):
            item_line = _item_line(items, i, line)
            try:
                if not isinstance(item, str):
                    raise ValueError(item)
                result.append(str(ipaddress.IPv4Network(item, strict=True)))
            except ValueError:
                self.fail(f"{where}[{i}]", item_line, "an IPv4 CIDR like 10.0.0.0/16", item)
        return tuple(result)

    def _strings(self, value: Any, key: Key, where: str, line: int) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail(where, line, "a list of strings", value)
        return tuple(
            self._string(v, key, f"{where}[{i}]", _item_line(value, i, line))
            for i, v in enumerate(value)
        )

    def _ports(self, value: Any, key: Key, where: str, line: int) -> tuple[int, ...]:
        if not isinstance(value, list):
            self.fail(where, line, "a list of TCP ports", value)
        for i, port in enumerate(value):
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                self.fail(f"{where}[{i}]", _item_line(value, i, line), "a TCP port 1-65535", port)
        return tuple(value)

    def _section(self, value: Any, key: Key, where: str, line: int) -> dict[str, Any]:
        assert key.section is not None
        return self.section(value, key.section, where, line)

    def _sections(self, value: Any, key: Key, where: str, line: int) -> list[dict[str, Any]]:
        assert key.section is not None
        if not isinstance(value, list) or not value:
            self.fail(where, line, f"a non-empty list of {key.name}", value)
        result = []
        for i, item in enumerate(value):
            path = f"{where}[{i}]"
            self.lines[path] = _item_line(value, i, line)
            result.append(self.section(item, key.section, path, self.lines[path]))
        return result


def _item_line(items: Any, index: int, line: int) -> int:
    lines: list[int] = getattr(items, "lines", [])
    return lines[index] if index < len(lines) else line


def _hint(key: Any, section: Section) -> str:
    close = difflib.get_close_matches(str(key), section.names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known keys: {', '.join(section.names)}"
