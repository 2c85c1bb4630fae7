"""In-memory Kubernetes API subset for the embedded network lab.

One aiohttp listener per cluster on 127.0.0.1 serves enough of core/v1, apps/v1 and
networking.k8s.io/v1 for the official Python client and kubectl: CRUD with label and field
selectors, watch, dry run, a tiny scheduler, deployment and endpoints controllers, pod exec
over WebSocket (v5/v4 channel protocols), pod logs, server-side tables and a stub OpenAPI v3
(so `kubectl apply` validates server-side). JSON only: kubectl's typed-client generators
(`kubectl create namespace|configmap|deployment`) send protobuf and get 415; `-f` works.

Identity: a request is the read-only viewer when it carries the cluster's viewer token or
its path starts with `/viewer` (kubectl sends no token to a plain-http server, so viewer
kubeconfig contexts use `http://127.0.0.1:PORT/viewer`); everything else is admin.

What a pod *is* stays outside: subscribers see every change as an `Event`, and the exec and
log handlers run commands in pods.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import copy
import datetime
import hashlib
import ipaddress
import json
import logging
import os
import random
import re
import string
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

import yaml
from aiohttp import WSMsgType, web

log = logging.getLogger("netconform.lab.apiserver")

Obj = dict[str, Any]


# -- public types ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSpec:
    """A node of a lab cluster."""

    name: str
    internal_ip: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterSpec:
    """One lab cluster: its listener, nodes and service range."""

    name: str
    port: int
    nodes: tuple[NodeSpec, ...]
    service_cidr: str
    namespaces: tuple[str, ...] = ()
    viewer_token: str = "viewer"
    secret: str = ""
    """When set, a request must start its path with `/s/<secret>` (what the kubeconfig's
    server URL holds) or carry it as bearer token; anything else is 401. The lab sets a
    random one: exec runs as root on the host, so no other local user may reach it."""


@dataclass(frozen=True)
class Event:
    """A stored object was added, modified or deleted."""

    type: str
    kind: str
    obj: dict[str, Any]


Subscriber = Callable[[str, Event], Awaitable[None]]
ExecHandler = Callable[[str, str, str, str, list[str]], Awaitable[asyncio.subprocess.Process]]
LogHandler = Callable[[str, str, str, str], Awaitable[str]]


# -- resources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One served resource type."""

    kind: str
    plural: str
    group: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    has_status: bool = False
    read_only: bool = False
    version: str = "v1"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """`pods`, `deployments.apps`: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


NETWORKING = "networking.k8s.io"
RESOURCES: Final = (
    Resource("Namespace", "namespaces", "", False, ("ns",), has_status=True),
    Resource("Node", "nodes", "", False, ("no",), has_status=True, read_only=True),
    Resource("Pod", "pods", "", True, ("po",), has_status=True),
    Resource("Service", "services", "", True, ("svc",), has_status=True),
    Resource("Endpoints", "endpoints", "", True, ("ep",)),
    Resource("ConfigMap", "configmaps", "", True, ("cm",)),
    Resource("Secret", "secrets", "", True),
    Resource("Deployment", "deployments", "apps", True, ("deploy",), has_status=True),
    Resource("Ingress", "ingresses", NETWORKING, True, ("ing",), has_status=True),
    Resource("IngressClass", "ingressclasses", NETWORKING, False),
    Resource("NetworkPolicy", "networkpolicies", NETWORKING, True, ("netpol",)),
)
BY_KIND: Final = {r.kind: r for r in RESOURCES}
GROUPS: Final = ("", "apps", NETWORKING)
PROTECTED_NAMESPACES: Final = ("default", "kube-system", "kube-public")
HISTORY_LIMIT: Final = 20000
NODE_PORTS: Final = range(30000, 32768)


# -- errors ------------------------------------------------------------------------------------


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


def _details(res: Resource, name: str, kind: str | None = None) -> Obj:
    details: Obj = {"name": name, "kind": kind or res.plural}
    if res.group:
        details["group"] = res.group
    return details


def not_found(res: Resource, name: str) -> ApiError:
    """404 NotFound for one object."""
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name))


def already_exists(res: Resource, name: str) -> ApiError:
    """409 AlreadyExists."""
    message = f'{res.qualified} "{name}" already exists'
    return ApiError(409, "AlreadyExists", message, _details(res, name))


def conflict(res: Resource, name: str) -> ApiError:
    """409 Conflict on a stale resourceVersion."""
    message = (
        f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, _details(res, name))


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
    details = _details(res, name, res.kind)
    details["causes"] = [dict(c._asdict()) for c in causes]
    return ApiError(422, "Invalid", f'{res.kind} "{name}" is invalid: {summary}', details)


def required(path: str, detail: str = "") -> Cause:
    """A missing field."""
    return Cause(path, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def bad_value(path: str, value: Any, detail: str) -> Cause:
    """A field with a bad value."""
    return Cause(path, "FieldValueInvalid", f"Invalid value: {json.dumps(value)}: {detail}")


def forbidden_field(path: str, detail: str) -> Cause:
    """A field that may not be set or changed."""
    return Cause(path, "FieldValueForbidden", f"Forbidden: {detail}")


# -- small helpers -----------------------------------------------------------------------------


def now() -> str:
    """RFC 3339 UTC timestamp, second precision, as Kubernetes writes it."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(obj: Obj) -> Obj:
    """The object's metadata (created when absent)."""
    value = obj.setdefault("metadata", {})
    assert isinstance(value, dict)
    return value


def labels_of(obj: Obj) -> dict[str, str]:
    """The object's labels."""
    return dict(obj.get("metadata", {}).get("labels") or {})


def random_suffix(length: int = 5) -> str:
    """Random lowercase alphanumerics, as generateName appends."""
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=length))


def pod_ready(pod: Obj) -> bool:
    """Running, and no Ready condition that says False."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    conditions = status.get("conditions") or []
    return all(c.get("status") != "False" for c in conditions if c.get("type") == "Ready")


def pod_terminal(pod: Obj) -> bool:
    """Succeeded or Failed."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def name_problem(kind: str, name: str) -> str | None:
    """Why `name` is not a valid name for `kind`, or None."""
    if kind == "Service":
        pattern, limit, what = _LABEL_1035, 63, "RFC 1035 label"
    elif kind == "Namespace":
        pattern, limit, what = _LABEL, 63, "RFC 1123 label"
    else:
        pattern, limit, what = _SUBDOMAIN, 253, "RFC 1123 subdomain"
    if len(name) > limit:
        return f"must be no more than {limit} characters"
    if not pattern.match(name):
        return f"a lowercase {what} must consist of lower case alphanumeric characters or '-'"
    return None


# -- selectors ---------------------------------------------------------------------------------

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


# -- patches -----------------------------------------------------------------------------------


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


# -- allocators --------------------------------------------------------------------------------


class IpPool:
    """ClusterIPs of one service CIDR; skips the network, first and broadcast addresses."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.used: set[str] = set()
        self._offset = 2

    def check(self, ip: str) -> str | None:
        """Why `ip` cannot be taken, or None."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return "must be a valid IP address"
        size = self.network.num_addresses
        offset = int(addr) - int(self.network.network_address)
        if addr not in self.network or offset < 2 or (size > 2 and offset == size - 1):
            return (f"provided IP is not in the valid range. The range of valid IPs is "
                    f"{self.network}")  # fmt: skip
        if str(addr) in self.used:
            return "provided IP is already allocated"
        return None

    def allocate(self) -> str:
        """The next free address, round-robin."""
        size = self.network.num_addresses
        for step in range(size):
            offset = 2 + (self._offset - 2 + step) % max(size - 3, 1)
            ip = str(self.network.network_address + offset)
            if self.check(ip) is None:
                self._offset = offset + 1
                self.used.add(ip)
                return ip
        raise ApiError(500, "InternalError", "failed to allocate a serviceIP: range is full")


# -- the store ---------------------------------------------------------------------------------


class Store:
    """The objects of one cluster, its controllers and its event stream."""

    def __init__(
        self, spec: ClusterSpec, subscribers: builtins.list[Subscriber] | None = None
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.subscribers: builtins.list[Subscriber] = subscribers if subscribers is not None else []
        self.resource_version = 0
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {r.kind: {} for r in RESOURCES}
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._history: deque[Event] = deque(maxlen=HISTORY_LIMIT)
        self._watchers: set[asyncio.Queue[Event | None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._ips = IpPool(spec.service_cidr)
        self._node_ports: set[int] = set()
        self._dirty_deployments: set[tuple[str, str]] = set()
        self._dirty_services: set[tuple[str, str]] = set()
        self._settling = False
        self._dry = False
        self._bootstrap()

    # -- reading --

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A deep copy of one object, or None."""
        obj = self._lookup(BY_KIND[kind], namespace, name)
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str = ""
    ) -> builtins.list[dict[str, Any]]:
        """Deep copies of the matching objects, by namespace then name."""
        selector = parse_label_selector(label_selector)
        return [copy.deepcopy(o) for o in self._select(BY_KIND[kind], namespace, selector)]

    def _select(
        self, res: Resource, namespace: str | None, selector: Selector = (),
        fields: Sequence[FieldTerm] = (),
    ) -> builtins.list[Obj]:  # fmt: skip
        items = [
            obj
            for (ns, _), obj in sorted(self._objects[res.kind].items())
            if (namespace is None or not res.namespaced or ns == namespace)
            and selector_matches(selector, labels_of(obj))
            and fields_match(fields, obj)
        ]
        return items

    def _lookup(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        return self._objects[res.kind].get(self._key(res, namespace, name))

    def _require(self, res: Resource, namespace: str | None, name: str) -> Obj:
        obj = self._lookup(res, namespace, name)
        if obj is None:
            raise not_found(res, name)
        return obj

    @staticmethod
    def _key(res: Resource, namespace: str | None, name: str) -> tuple[str, str]:
        return ((namespace or "") if res.namespaced else "", name)

    # -- public mutations --

    async def create(self, kind: str, namespace: str | None, body: Obj) -> Obj:
        """Create an object (201 semantics); returns the stored copy."""
        return self._settled(self._create(BY_KIND[kind], namespace, body))

    async def replace(
        self, kind: str, namespace: str | None, name: str, body: Obj, subresource: str = ""
    ) -> Obj:
        """PUT semantics; `subresource="status"` replaces only the status."""
        return self._settled(self._replace(BY_KIND[kind], namespace, name, body, subresource))

    async def patch(
        self, kind: str, namespace: str | None, name: str, patch: Any,
        content_type: str = "application/merge-patch+json", subresource: str = "",
    ) -> Obj:  # fmt: skip
        """PATCH semantics by content type."""
        res = BY_KIND[kind]
        return self._settled(self._patch(res, namespace, name, patch, content_type, subresource))

    async def delete(self, kind: str, namespace: str | None, name: str) -> Obj:
        """Delete at once (cascading for namespaces and deployments); returns the last state."""
        return self._settled(self._delete(BY_KIND[kind], namespace, name))

    async def update_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Strategic-merge `status` into the pod's status (conditions by type, containerStatuses
        by name, other lists replaced, None deletes a key), bump resourceVersion, emit MODIFIED.
        Raises ApiError (404) when the pod is gone."""
        pod = copy.deepcopy(self._require(BY_KIND["Pod"], namespace, name))
        pod["status"] = strategic_merge(pod.get("status") or {}, status)
        self._complete_pod_status(pod)
        self._settled(self._write_status(BY_KIND["Pod"], pod))

    async def set_service_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge `status` (e.g. `{"loadBalancer": {"ingress": [{"ip": ...}]}}`) into a service."""
        svc = copy.deepcopy(self._require(BY_KIND["Service"], namespace, name))
        svc["status"] = merge_patch(svc.get("status") or {}, status)
        self._settled(self._write_status(BY_KIND["Service"], svc))

    async def wait_idle(self) -> None:
        """Wait until every event so far was delivered (not from inside a subscriber)."""
        await self._queue.join()

    def scale(self, namespace: str, name: str) -> Obj:
        """The `autoscaling/v1` Scale of a deployment."""
        dep = self._require(BY_KIND["Deployment"], namespace, name)
        dmeta, status = dep["metadata"], dep.get("status") or {}
        selector = ",".join(f"{k}={v}" for k, v in
                            (dep["spec"]["selector"].get("matchLabels") or {}).items())  # fmt: skip
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: dmeta[k] for k in
                         ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
            "spec": {"replicas": dep["spec"]["replicas"]},
            "status": {"replicas": status.get("replicas", 0), "selector": selector},
        }  # fmt: skip

    async def set_scale(self, namespace: str, name: str, scale: Obj) -> Obj:
        """PUT of the scale subresource."""
        dep = copy.deepcopy(self._require(BY_KIND["Deployment"], namespace, name))
        wanted = scale.get("metadata", {}).get("resourceVersion")
        if wanted and wanted != dep["metadata"]["resourceVersion"]:
            raise conflict(BY_KIND["Deployment"], name)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid(dep, bad_value("spec.replicas", replicas, "must be >= 0"))
        dep["spec"]["replicas"] = replicas
        await self.replace("Deployment", namespace, name, dep)
        return self.scale(namespace, name)

    def _settled(self, obj: Obj) -> Obj:
        self._settle()
        return obj

    @contextlib.contextmanager
    def dry_run(self) -> Iterator[None]:
        """Mutations inside are validated and answered as usual, then undone unseen
        (`?dryRun=All`). Only for code that does not await other tasks inside."""
        saved = copy.deepcopy((self._objects, self.resource_version, self._ips, self._node_ports))
        self._dry = True
        try:
            yield
        finally:
            self._objects, self.resource_version, self._ips, self._node_ports = saved
            self._dry = False

    # -- generic mutations --

    def _create(self, res: Resource, namespace: str | None, body: Any) -> Obj:
        if res.read_only:
            raise method_not_allowed()
        obj = self._as_object(res, body)
        self._place(res, namespace, obj)
        self._name(res, obj)
        self._admit(res, obj, None)
        m = meta(obj)
        m.update(uid=str(uuid.uuid4()), creationTimestamp=now())
        for key in ("resourceVersion", "deletionTimestamp", "managedFields", "selfLink"):
            m.pop(key, None)
        self._commit("ADDED", res, obj)
        return copy.deepcopy(obj)

    def _replace(
        self, res: Resource, namespace: str | None, name: str, body: Any, sub: str = ""
    ) -> Obj:
        if res.read_only:
            raise method_not_allowed()
        old = self._require(res, namespace, name)
        new = self._as_object(res, body)
        self._check_identity(res, old, new, name)
        if sub == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            new["status"] = status if status is not None else {}
            return self._write_status(res, new)
        for key in ("uid", "creationTimestamp", "namespace", "generation", "resourceVersion"):
            if key in old["metadata"]:
                new["metadata"][key] = old["metadata"][key]
        if res.has_status:
            new["status"] = copy.deepcopy(old.get("status", {}))
        self._admit(res, new, old)
        if new == old:
            return copy.deepcopy(old)
        self._commit("MODIFIED", res, new)
        return copy.deepcopy(new)

    def _patch(
        self, res: Resource, namespace: str | None, name: str, patch: Any,
        content_type: str, sub: str = "",
    ) -> Obj:  # fmt: skip
        old = self._require(res, namespace, name)
        patched = apply_patch(copy.deepcopy(old), patch, content_type)
        return self._replace(res, namespace, name, patched, sub)

    def _delete(self, res: Resource, namespace: str | None, name: str) -> Obj:
        if res.read_only:
            raise method_not_allowed()
        obj = self._require(res, namespace, name)
        if res.kind == "Namespace":
            self._delete_namespace_contents(obj)
        obj = copy.deepcopy(obj)
        self._commit("DELETED", res, obj)
        self._after_delete(res, obj)
        return copy.deepcopy(obj)

    def _write_status(self, res: Resource, new: Obj) -> Obj:
        """Store `new` if it differs from the current object (used for status-only writes)."""
        old = self._require(res, new["metadata"].get("namespace"), new["metadata"]["name"])
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return copy.deepcopy(old)
        self._commit("MODIFIED", res, new)
        return copy.deepcopy(new)

    def _commit(self, type_: str, res: Resource, obj: Obj) -> None:
        """Store or drop `obj` with a new resourceVersion and tell everyone."""
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)
        bucket = self._objects[res.kind]
        key = self._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if type_ == "DELETED":
            bucket.pop(key, None)
        else:
            bucket[key] = obj
        if self._dry:
            return
        event = Event(type_, res.kind, copy.deepcopy(obj))
        self._history.append(event)
        for watcher in self._watchers:
            watcher.put_nowait(event)
        self._queue.put_nowait(Event(type_, res.kind, copy.deepcopy(obj)))  # subscribers' own
        self._mark_dirty(event)

    # -- admission --

    @staticmethod
    def _as_object(res: Resource, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        for key, want in (("kind", res.kind), ("apiVersion", res.api_version)):
            if obj.get(key) not in (None, "", want):
                raise bad_request(f"{key} {obj[key]!r} does not match the resource "
                                  f"{res.qualified} ({want!r})")  # fmt: skip
            obj[key] = want
        if not isinstance(obj.setdefault("metadata", {}), dict):
            raise bad_request("metadata must be an object")
        for key in ("labels", "annotations"):
            value = obj["metadata"].get(key)
            if value is not None and not (
                isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
            ):
                raise invalid(obj, bad_value(f"metadata.{key}", value, "must map strings"))
        return obj

    def _place(self, res: Resource, namespace: str | None, obj: Obj) -> None:
        m = meta(obj)
        if not res.namespaced:
            m.pop("namespace", None)
            return
        namespace = namespace or m.get("namespace") or "default"
        if m.get("namespace") not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")  # fmt: skip
        m["namespace"] = namespace
        if self._lookup(BY_KIND["Namespace"], None, namespace) is None:
            raise not_found(BY_KIND["Namespace"], namespace)

    def _name(self, res: Resource, obj: Obj) -> None:
        m = meta(obj)
        if not m.get("name"):
            if not m.get("generateName"):
                raise invalid(obj, required("metadata.name", "name or generateName is required"))
            m["name"] = self._generated_name(res, m)
        problem = name_problem(res.kind, m["name"])
        if problem:
            raise invalid(obj, bad_value("metadata.name", m["name"], problem))
        if self._lookup(res, m.get("namespace"), m["name"]) is not None:
            raise already_exists(res, m["name"])

    def _generated_name(self, res: Resource, m: Obj) -> str:
        for _ in range(100):
            name = f"{m['generateName']}{random_suffix()}"
            if self._lookup(res, m.get("namespace"), name) is None:
                return str(name)
        raise ApiError(500, "InternalError", "could not generate a unique name")

    def _check_identity(self, res: Resource, old: Obj, new: Obj, name: str) -> None:
        m = new["metadata"]
        if m.get("name") not in (None, "", name):
            raise bad_request(f"the name of the object ({m['name']}) does not match the name on "
                              f"the URL ({name})")  # fmt: skip
        m["name"] = name
        if res.namespaced and m.get("namespace") not in (None, "", old["metadata"]["namespace"]):
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")  # fmt: skip
        wanted = m.get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise conflict(res, name)

    def _admit(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        hook = {
            "Namespace": self._admit_namespace,
            "Pod": self._admit_pod,
            "Service": self._admit_service,
            "ConfigMap": self._admit_configmap,
            "Secret": self._admit_secret,
            "Deployment": self._admit_deployment,
            "Ingress": self._admit_ingress,
            "NetworkPolicy": self._admit_network_policy,
        }.get(res.kind)
        if hook is not None:
            hook(obj, old)

    # -- kinds --

    def _bootstrap(self) -> None:
        names = dict.fromkeys(("default", "kube-system", "kube-public", *self.spec.namespaces))
        for ns in names:
            self._create(BY_KIND["Namespace"], None, {"metadata": {"name": ns}})
        for node in self.spec.nodes:
            self._add_node(node)

    def _add_node(self, node: NodeSpec) -> None:
        stamp = now()
        obj = {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {
                "name": node.name,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": stamp,
                "labels": node_labels(node),
            },
            "spec": {},
            "status": node_status(node, stamp),
        }
        self._commit("ADDED", BY_KIND["Node"], obj)

    @staticmethod
    def _admit_namespace(ns: Obj, old: Obj | None) -> None:
        name = ns["metadata"]["name"]
        ns["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        ns.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        if old is None:
            ns["status"] = {"phase": "Active"}

    def _delete_namespace_contents(self, ns: Obj) -> None:
        name = ns["metadata"]["name"]
        if name in PROTECTED_NAMESPACES:
            raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace '
                           "may not be deleted", _details(BY_KIND["Namespace"], name))  # fmt: skip
        order = ("Deployment", "Service", "Pod")
        kinds = [*order, *(r.kind for r in RESOURCES if r.namespaced and r.kind not in order)]
        for kind in kinds:
            res = BY_KIND[kind]
            for obj in self._select(res, name):
                if self._lookup(res, name, obj["metadata"]["name"]) is not None:
                    self._delete(res, name, obj["metadata"]["name"])

    def _after_delete(self, res: Resource, obj: Obj) -> None:
        ns, name = obj["metadata"].get("namespace"), obj["metadata"]["name"]
        if res.kind == "Service":
            self._release_service(obj)
            ep = BY_KIND["Endpoints"]
            if obj["spec"].get("selector") and self._lookup(ep, ns, name) is not None:
                self._delete(ep, ns, name)
        elif res.kind == "Deployment":
            for pod in self._owned_pods(obj):
                self._delete(BY_KIND["Pod"], ns, pod["metadata"]["name"])

    # pods

    def _admit_pod(self, pod: Obj, old: Obj | None) -> None:
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            raise invalid(pod, required("spec"))
        problem = pod_spec_problem(spec, "spec")
        if problem:
            raise invalid(pod, problem)
        default_pod_spec(spec)
        if old is not None:
            self._check_pod_update(pod, old)
            return
        self._schedule(pod)

    @staticmethod
    def _check_pod_update(pod: Obj, old: Obj) -> None:
        pod["spec"].setdefault("nodeName", old["spec"].get("nodeName"))
        if pod["spec"].get("nodeName") is None:
            pod["spec"].pop("nodeName")
        if mutable_pod_fields_stripped(pod["spec"]) != mutable_pod_fields_stripped(old["spec"]):
            raise invalid(pod, forbidden_field("spec", "pod updates may not change fields other "
                          "than `spec.containers[*].image`, `spec.initContainers[*].image`, "
                          "`spec.activeDeadlineSeconds`, `spec.tolerations`"))  # fmt: skip

    def _schedule(self, pod: Obj) -> None:
        spec, stamp = pod["spec"], now()
        nodes = {n.name: n for n in self.spec.nodes}
        wanted = spec.get("nodeName")
        if wanted and wanted not in nodes:
            raise invalid(pod, bad_value("spec.nodeName", wanted, "node not found"))
        node = nodes[wanted] if wanted else self._pick_node(spec)
        scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp}
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort", "conditions": [scheduled]}
        if node is None:
            scheduled.update(
                status="False",
                reason="Unschedulable",
                message=f"0/{len(nodes)} "
                "nodes are available: no node matched the pod's node selector",
            )
            return  # fmt: skip
        spec["nodeName"] = node.name
        pod["status"].update(hostIP=node.internal_ip, hostIPs=[{"ip": node.internal_ip}])

    def _pick_node(self, spec: Obj) -> NodeSpec | None:
        """Fewest non-terminal pods first, ties by name; honours spec.nodeSelector."""
        selector = dict(spec.get("nodeSelector") or {})
        load = {n.name: 0 for n in self.spec.nodes}
        for pod in self._objects["Pod"].values():
            node = pod["spec"].get("nodeName")
            if node in load and not pod_terminal(pod):
                load[node] += 1
        candidates = [
            n for n in self.spec.nodes
            if all(node_labels(n).get(k) == v for k, v in selector.items())
        ]  # fmt: skip
        return min(candidates, key=lambda n: (load[n.name], n.name), default=None)

    def _complete_pod_status(self, pod: Obj) -> None:
        """Fill the fields the client's models require in container statuses."""
        images = {c["name"]: c.get("image", "") for c in pod["spec"]["containers"]}
        status = pod["status"]
        for cs in status.get("containerStatuses") or []:
            running = (cs.get("state") or {}).get("running")
            if isinstance(running, dict):
                running.setdefault("startedAt", now())
            cs.setdefault("image", images.get(cs.get("name", ""), ""))
            cs.setdefault("imageID", "")
            cs.setdefault("ready", status.get("phase") == "Running")
            cs.setdefault("restartCount", 0)
        for cond in status.get("conditions") or []:
            cond.setdefault("lastTransitionTime", now())
        if status.get("phase") == "Running":
            status.setdefault("startTime", now())

    # services

    def _admit_service(self, svc: Obj, old: Obj | None) -> None:
        spec = svc.get("spec")
        if not isinstance(spec, dict):
            raise invalid(svc, required("spec"))
        problem = service_spec_problem(spec)
        if problem:
            raise invalid(svc, problem)
        default_service_spec(spec)
        old_spec = old["spec"] if old is not None else {}
        ip = self._plan_cluster_ip(svc, old_spec)
        ports = self._plan_node_ports(svc, old_spec)
        self._commit_allocations(svc, old_spec, ip, ports)
        if old is None:
            svc["status"] = {"loadBalancer": {}}

    def _plan_cluster_ip(self, svc: Obj, old_spec: Obj) -> str | None:
        """The clusterIP the service will hold (None for ExternalName)."""
        spec = svc["spec"]
        if spec["type"] == "ExternalName":
            return None
        wanted = spec.get("clusterIP") or (spec.get("clusterIPs") or [""])[0]
        current = old_spec.get("clusterIP")
        if current and wanted and wanted != current:
            raise invalid(svc, bad_value("spec.clusterIPs[0]", wanted, "field is immutable"))
        if current or wanted == "None":
            return str(current or wanted)
        if wanted:
            problem = self._ips.check(wanted)
            if problem:
                raise invalid(svc, bad_value("spec.clusterIPs", [wanted], problem))
            return str(wanted)
        return ""  # allocate on commit

    def _plan_node_ports(self, svc: Obj, old_spec: Obj) -> builtins.list[int]:
        """The nodePort of each port (empty when the type has none)."""
        spec = svc["spec"]
        if spec["type"] not in ("NodePort", "LoadBalancer"):
            return []
        owned = {(p.get("port"), p.get("protocol")): p.get("nodePort")
                 for p in old_spec.get("ports") or [] if p.get("nodePort")}  # fmt: skip
        mine = {p for p in owned.values() if p}
        taken = self._node_ports - mine
        chosen: builtins.list[int] = []
        for i, port in enumerate(spec["ports"]):
            value = port.get("nodePort") or owned.get((port["port"], port["protocol"]))
            if value and (value not in NODE_PORTS or value in taken or value in chosen):
                why = "provided port is already allocated" if value in NODE_PORTS else (
                    f"provided port is not in the valid range. The range of valid ports is "
                    f"{NODE_PORTS.start}-{NODE_PORTS.stop - 1}")  # fmt: skip
                raise invalid(svc, bad_value(f"spec.ports[{i}].nodePort", value, why))
            chosen.append(int(value or 0))
        free = (p for p in NODE_PORTS if p not in taken and p not in chosen)
        return [p or next(free) for p in chosen]

    def _commit_allocations(
        self, svc: Obj, old_spec: Obj, ip: str | None, node_ports: builtins.list[int]
    ) -> None:
        spec = svc["spec"]
        self._release_spec(old_spec)
        if ip == "":
            ip = self._ips.allocate()
        if ip is None:
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        else:
            if ip != "None":
                self._ips.used.add(ip)
            spec.update(clusterIP=ip, clusterIPs=[ip])
        for port, node_port in zip(spec["ports"], node_ports, strict=False):
            port["nodePort"] = node_port
            self._node_ports.add(node_port)
        if not node_ports:
            for port in spec["ports"]:
                port.pop("nodePort", None)

    def _release_spec(self, spec: Obj) -> None:
        self._ips.used.discard(spec.get("clusterIP") or "")
        for port in spec.get("ports") or []:
            self._node_ports.discard(port.get("nodePort") or 0)

    def _release_service(self, svc: Obj) -> None:
        self._release_spec(svc.get("spec") or {})

    # config maps, secrets, networking

    @staticmethod
    def _admit_configmap(cm: Obj, old: Obj | None) -> None:
        for key in ("data", "binaryData"):
            value = cm.get(key)
            if value is not None and not (
                isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
            ):
                raise invalid(cm, bad_value(key, value, "must map keys to strings"))

    @staticmethod
    def _admit_secret(secret: Obj, old: Obj | None) -> None:
        Store._admit_configmap({**secret, "kind": "ConfigMap"}, old)
        data = secret.setdefault("data", {}) or {}
        for key, value in (secret.pop("stringData", None) or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = data
        secret.setdefault("type", "Opaque")

    @staticmethod
    def _admit_ingress(ing: Obj, old: Obj | None) -> None:
        if not isinstance(ing.setdefault("spec", {}), dict):
            raise invalid(ing, bad_value("spec", ing["spec"], "must be an object"))
        if old is None:
            ing["status"] = {"loadBalancer": {}}

    @staticmethod
    def _admit_network_policy(policy: Obj, old: Obj | None) -> None:
        spec = policy.setdefault("spec", {})
        if not isinstance(spec, dict):
            raise invalid(policy, bad_value("spec", spec, "must be an object"))
        spec.setdefault("podSelector", {})
        if "policyTypes" not in spec:
            spec["policyTypes"] = ["Ingress", *(["Egress"] if spec.get("egress") else [])]

    # deployments

    def _admit_deployment(self, dep: Obj, old: Obj | None) -> None:
        spec = dep.get("spec")
        if not isinstance(spec, dict):
            raise invalid(dep, required("spec"))
        problem = deployment_spec_problem(spec)
        if problem:
            raise invalid(dep, problem)
        default_deployment_spec(spec)
        if old is None:
            dep["metadata"]["generation"] = 1
            dep["status"] = {}
            return
        if spec["selector"] != old["spec"]["selector"]:
            raise invalid(dep, bad_value("spec.selector", spec["selector"], "field is immutable"))
        if spec != old["spec"]:
            dep["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1

    def _owned_pods(self, dep: Obj) -> builtins.list[Obj]:
        uid = dep["metadata"]["uid"]
        return [
            pod for pod in self._select(BY_KIND["Pod"], dep["metadata"]["namespace"])
            if any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences") or [])
        ]  # fmt: skip

    # -- controllers --

    def _mark_dirty(self, event: Event) -> None:
        m = event.obj["metadata"]
        ns = m.get("namespace", "")
        if event.kind == "Deployment" and event.type != "DELETED":
            self._dirty_deployments.add((ns, m["name"]))
        elif event.kind == "Service" and event.type != "DELETED":
            self._dirty_services.add((ns, m["name"]))
        elif event.kind == "Pod":
            for ref in m.get("ownerReferences") or []:
                if ref.get("kind") == "Deployment":
                    self._dirty_deployments.add((ns, ref.get("name", "")))
            for svc in self._select(BY_KIND["Service"], ns):
                if svc["spec"].get("selector"):
                    self._dirty_services.add((ns, svc["metadata"]["name"]))

    def _settle(self) -> None:
        """Run the controllers until nothing is left to do (not re-entrant)."""
        if self._settling or self._dry:
            return
        self._settling = True
        try:
            for _ in range(100000):
                if self._dirty_deployments:
                    self._guarded(self._reconcile_deployment, *self._dirty_deployments.pop())
                elif self._dirty_services:
                    self._guarded(self._sync_endpoints, *self._dirty_services.pop())
                else:
                    return
            log.error("%s: controllers did not settle", self.name)
        finally:
            self._settling = False

    def _guarded(self, step: Callable[[str, str], None], namespace: str, name: str) -> None:
        try:
            step(namespace, name)
        except ApiError as exc:
            log.error("%s: controller for %s/%s failed: %s", self.name, namespace, name, exc)

    def _reconcile_deployment(self, namespace: str, name: str) -> None:
        dep = self._lookup(BY_KIND["Deployment"], namespace, name)
        if dep is None:
            return
        pod_res = BY_KIND["Pod"]
        template_hash = pod_template_hash(dep["spec"]["template"])
        current = []
        for pod in self._owned_pods(dep):
            if pod_terminal(pod) or labels_of(pod).get("pod-template-hash") != template_hash:
                self._delete(pod_res, namespace, pod["metadata"]["name"])
            else:
                current.append(pod)
        missing = dep["spec"]["replicas"] - len(current)
        for _ in range(missing):
            self._create(pod_res, namespace, self._pod_for(dep, template_hash))
        surplus = sorted(
            current,
            key=lambda p: (
                pod_ready(p),
                p["metadata"]["creationTimestamp"],
                int(p["metadata"]["resourceVersion"]),
            ),
        )
        for pod in surplus[: max(-missing, 0)]:
            self._delete(pod_res, namespace, pod["metadata"]["name"])
        self._update_deployment_status(dep, template_hash)

    def _pod_for(self, dep: Obj, template_hash: str) -> Obj:
        template = copy.deepcopy(dep["spec"]["template"])
        tmeta, dmeta = template.get("metadata") or {}, dep["metadata"]
        name = f"{dmeta['name']}-{template_hash}-{random_suffix()}"
        while self._lookup(BY_KIND["Pod"], dmeta["namespace"], name) is not None:
            name = f"{dmeta['name']}-{template_hash}-{random_suffix()}"
        owner = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": dmeta["name"],
            "uid": dmeta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        pod_meta = {
            "name": name,
            "generateName": f"{dmeta['name']}-{template_hash}-",
            "namespace": dmeta["namespace"],
            "labels": {**(tmeta.get("labels") or {}), "pod-template-hash": template_hash},
            "ownerReferences": [owner],
        }  # fmt: skip
        if tmeta.get("annotations"):
            pod_meta["annotations"] = tmeta["annotations"]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
                "spec": template.get("spec") or {}}  # fmt: skip

    def _update_deployment_status(self, dep: Obj, template_hash: str) -> None:
        pods = [p for p in self._owned_pods(dep) if not pod_terminal(p)]
        ready = sum(pod_ready(p) for p in pods)
        updated = sum(labels_of(p).get("pod-template-hash") == template_hash for p in pods)
        wanted = dep["spec"]["replicas"]
        status: Obj = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": len(pods),
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        if len(pods) > ready:
            status["unavailableReplicas"] = len(pods) - ready
        old_conditions = (dep.get("status") or {}).get("conditions") or []
        status["conditions"] = deployment_conditions(
            ready >= wanted, updated == wanted == len(pods) == ready, old_conditions
        )
        new = copy.deepcopy(dep)
        new["status"] = status
        self._write_status(BY_KIND["Deployment"], new)

    def _sync_endpoints(self, namespace: str, name: str) -> None:
        svc = self._lookup(BY_KIND["Service"], namespace, name)
        if svc is None or not svc["spec"].get("selector"):
            return
        selector = selector_from_spec({"matchLabels": svc["spec"]["selector"]})
        pods = self._select(BY_KIND["Pod"], namespace, selector)
        subsets = endpoint_subsets(svc, pods)
        ep_res = BY_KIND["Endpoints"]
        current = self._lookup(ep_res, namespace, name)
        body: Obj = {"metadata": {"name": name, "namespace": namespace,
                                  "labels": labels_of(svc)}, "subsets": subsets}  # fmt: skip
        if current is None:
            self._create(ep_res, namespace, body)
        elif current.get("subsets") != subsets or labels_of(current) != labels_of(svc):
            updated = copy.deepcopy(current)
            updated.update(subsets=subsets)
            updated["metadata"]["labels"] = labels_of(svc)
            self._replace(ep_res, namespace, name, updated)

    # -- delivery and watches --

    def start(self) -> None:
        """Start delivering events to subscribers (in the running loop)."""
        if self._dispatcher is None:
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    async def stop(self) -> None:
        """Stop delivering events and end all watches."""
        for watcher in self._watchers:
            watcher.put_nowait(None)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None

    async def _dispatch(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                for subscriber in list(self.subscribers):
                    await self._deliver(subscriber, event)
            finally:
                self._queue.task_done()

    async def _deliver(self, subscriber: Subscriber, event: Event) -> None:
        try:
            await subscriber(self.name, event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: subscriber failed on %s %s", self.name, event.type, event.kind)

    def open_watch(self, kind: str, since: str) -> asyncio.Queue[Event | None]:
        """A queue of events of `kind` after resourceVersion `since` ("" or "0": current
        objects as ADDED first); 410 Gone when `since` is older than the kept history."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        if since in ("", "0"):
            for obj in self._select(BY_KIND[kind], None):
                queue.put_nowait(Event("ADDED", kind, copy.deepcopy(obj)))
        else:
            self._replay(queue, kind, since)
        self._watchers.add(queue)
        return queue

    def _replay(self, queue: asyncio.Queue[Event | None], kind: str, since: str) -> None:
        try:
            after = int(since)
        except ValueError as exc:
            raise bad_request(f"invalid resourceVersion {since!r}") from exc
        oldest = int(self._history[0].obj["metadata"]["resourceVersion"]) if self._history else 0
        if after < oldest - 1 and len(self._history) == HISTORY_LIMIT:
            raise ApiError(410, "Expired", f"too old resource version: {after} ({oldest})")
        for event in self._history:
            if event.kind == kind and int(event.obj["metadata"]["resourceVersion"]) > after:
                queue.put_nowait(event)

    def close_watch(self, queue: asyncio.Queue[Event | None]) -> None:
        """Forget a watch queue."""
        self._watchers.discard(queue)


# -- per-kind rules (pure functions) -----------------------------------------------------------


def node_labels(node: NodeSpec) -> dict[str, str]:
    """A node's labels as stored."""
    return {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", **node.labels}  # fmt: skip


def node_status(node: NodeSpec, stamp: str) -> Obj:
    """A Ready node with its InternalIP."""
    ready = {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "kubelet is posting ready status", "lastHeartbeatTime": stamp,
             "lastTransitionTime": stamp}  # fmt: skip
    capacity = {"cpu": "2", "memory": "4Gi", "pods": "110"}
    return {
        "addresses": [{"type": "InternalIP", "address": node.internal_ip},
                      {"type": "Hostname", "address": node.name}],
        "conditions": [ready],
        "capacity": capacity,
        "allocatable": capacity,
        "nodeInfo": {
            "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "lab://1.0",
            "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "v1.32.0",
            "machineID": "", "operatingSystem": "linux", "osImage": "netconform lab",
            "systemUUID": "",
        },
    }  # fmt: skip


def pod_spec_problem(spec: Obj, path: str) -> Cause | None:
    """The first problem of a pod spec, or None."""
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return required(f"{path}.containers")
    seen: set[str] = set()
    for i, container in enumerate(containers):
        where = f"{path}.containers[{i}]"
        if not isinstance(container, dict):
            return bad_value(where, container, "must be an object")
        name = container.get("name")
        if not name:
            return required(f"{where}.name")
        if not isinstance(name, str) or not _LABEL.match(name):
            return bad_value(f"{where}.name", name, "must be an RFC 1123 label")
        if name in seen:
            return Cause(f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"')
        seen.add(name)
        if not container.get("image"):
            return required(f"{where}.image")
        for j, port in enumerate(container.get("ports") or []):
            value = port.get("containerPort") if isinstance(port, dict) else None
            if not isinstance(value, int) or not 0 < value < 65536:
                return bad_value(f"{where}.ports[{j}].containerPort", value,
                                 "must be between 1 and 65535, inclusive")  # fmt: skip
    return None


def default_pod_spec(spec: Obj) -> None:
    """The defaults the API server fills in a pod spec."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in spec["containers"]:
        image = str(container["image"])
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")


def mutable_pod_fields_stripped(spec: Obj) -> Obj:
    """A pod spec without the fields a pod update may change."""
    stripped = copy.deepcopy(spec)
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        stripped.pop(key, None)
    for key in ("containers", "initContainers"):
        for container in stripped.get(key) or []:
            container.pop("image", None)
    return stripped


def service_spec_problem(spec: Obj) -> Cause | None:
    """Default the type and port protocols, then return the first problem (or None)."""
    kind = spec.setdefault("type", "ClusterIP")
    types = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
    if kind not in types:
        return Cause(
            "spec.type",
            "FieldValueNotSupported",
            f'Unsupported value: "{kind}": supported values: {", ".join(types)}',
        )
    if kind == "ExternalName":
        return None if spec.get("externalName") else required("spec.externalName")
    ports = spec.get("ports") or []
    if not ports and spec.get("clusterIP") != "None":
        return required("spec.ports")
    names: set[str] = set()
    for i, port in enumerate(ports):
        problem = service_port_problem(port, i, len(ports), names)
        if problem:
            return problem
    selector = spec.get("selector")
    if selector is not None and not isinstance(selector, dict):
        return bad_value("spec.selector", selector, "must map strings to strings")
    return None


def service_port_problem(port: Any, i: int, count: int, names: set[str]) -> Cause | None:
    """The problem of one service port (or None); defaults its protocol."""
    where = f"spec.ports[{i}]"
    if not isinstance(port, dict):
        return bad_value(where, port, "must be an object")
    value = port.get("port")
    if not isinstance(value, int) or not 0 < value < 65536:
        return bad_value(f"{where}.port", value, "must be between 1 and 65535, inclusive")
    name = port.get("name") or ""
    if count > 1 and not name:
        return required(f"{where}.name")
    if name in names:
        return Cause(f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"')
    names.add(name)
    if port.setdefault("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
        return Cause(f"{where}.protocol", "FieldValueNotSupported",
                     f'Unsupported value: "{port["protocol"]}"')  # fmt: skip
    return None


def default_service_spec(spec: Obj) -> None:
    """The defaults the API server fills in a service spec."""
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("ports", [])
    for port in spec["ports"]:
        port.setdefault("targetPort", port["port"])
    if spec["type"] == "ExternalName":
        return
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)


def deployment_spec_problem(spec: Obj) -> Cause | None:
    """Default the replicas, then return the first problem of a deployment spec (or None)."""
    replicas = spec.setdefault("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        return bad_value("spec.replicas", replicas, "must be greater than or equal to 0")
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        return required("spec.selector")
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return required("spec.template.spec")
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector_matches(selector_from_spec(selector), template_labels):
        return bad_value("spec.template.metadata.labels", template_labels,
                         "`selector` does not match template `labels`")  # fmt: skip
    return pod_spec_problem(template["spec"], "spec.template.spec")


def default_deployment_spec(spec: Obj) -> None:
    """The defaults the API server fills in a deployment spec."""
    spec.setdefault(
        "strategy",
        {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
    )
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_pod_spec(spec["template"]["spec"])


def pod_template_hash(template: Obj) -> str:
    """10 hex digits that change when the pod template changes."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def deployment_conditions(available: bool, complete: bool, old: list[Obj]) -> list[Obj]:
    """Available and Progressing conditions; timestamps kept while a condition is unchanged."""
    wanted = [
        ("Available", available, "MinimumReplicasAvailable" if available
         else "MinimumReplicasUnavailable", "Deployment has minimum availability." if available
         else "Deployment does not have minimum availability."),
        ("Progressing", True, "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
         "Deployment has successfully progressed." if complete else "Deployment is progressing."),
    ]  # fmt: skip
    previous = {c.get("type"): c for c in old}
    conditions = []
    for kind, ok, reason, message in wanted:
        cond = {"type": kind, "status": "True" if ok else "False", "reason": reason,
                "message": message}  # fmt: skip
        before = previous.get(kind) or {}
        same = all(before.get(k) == cond[k] for k in ("status", "reason"))
        stamp = before.get("lastTransitionTime") if same else None
        cond.update(lastUpdateTime=stamp or now(), lastTransitionTime=stamp or now())
        conditions.append(cond)
    return conditions


def resolve_target_port(port: Obj, pod: Obj) -> int | None:
    """A service port's targetPort as a number for `pod` (named ports looked up)."""
    target = port.get("targetPort", port["port"])
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in pod["spec"].get("containers") or []:
        for cport in container.get("ports") or []:
            if cport.get("name") == target and cport.get("protocol", "TCP") == port["protocol"]:
                return int(cport["containerPort"])
    return None


def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj] | None:
    """The Endpoints ports of `svc` for `pod`, None when a named port does not resolve."""
    ports = []
    for port in svc["spec"].get("ports") or []:
        number = resolve_target_port(port, pod)
        if number is None:
            return None
        entry: Obj = {"port": number, "protocol": port["protocol"]}
        if port.get("name"):
            entry["name"] = port["name"]
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        ports.append(entry)
    return ports


def endpoint_address(pod: Obj) -> Obj:
    """An EndpointAddress pointing at `pod`."""
    m = pod["metadata"]
    address: Obj = {
        "ip": pod["status"]["podIP"],
        "targetRef": {"kind": "Pod", "namespace": m["namespace"], "name": m["name"],
                      "uid": m["uid"]},
    }  # fmt: skip
    if pod["spec"].get("nodeName"):
        address["nodeName"] = pod["spec"]["nodeName"]
    return address


def endpoint_subsets(svc: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """Subsets for `svc`: pods with an IP grouped by resolved ports, ready or not."""
    groups: dict[str, tuple[list[Obj], list[Obj], list[Obj]]] = {}
    publish_all = bool(svc["spec"].get("publishNotReadyAddresses"))
    for pod in pods:
        ports = endpoint_ports(svc, pod)
        if not (pod.get("status") or {}).get("podIP") or pod_terminal(pod) or ports is None:
            continue
        group = groups.setdefault(json.dumps(ports, sort_keys=True), (ports, [], []))
        group[1 if publish_all or pod_ready(pod) else 2].append(endpoint_address(pod))
    subsets = []
    for _, (ports, ready, not_ready) in sorted(groups.items()):
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: ipaddress.ip_address(a["ip"]))
        if not_ready:
            subset["notReadyAddresses"] = sorted(
                not_ready, key=lambda a: ipaddress.ip_address(a["ip"])
            )
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    return subsets


# -- discovery ---------------------------------------------------------------------------------

ALL_VERBS: Final = ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                    "watch"]  # fmt: skip
READ_VERBS: Final = ("get", "list", "watch")
VERSION_INFO: Final = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-netconform-lab",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def group_version(group: str) -> str:
    """`v1` for the core group, else `group/v1`."""
    return f"{group}/v1" if group else "v1"


def _subresource(res: Resource, sub: str, kind: str, verbs: list[str], **extra: str) -> Obj:
    return {"name": f"{res.plural}/{sub}", "singularName": "", "namespaced": res.namespaced,
            "kind": kind, "verbs": verbs, **extra}  # fmt: skip


def _resource_entries(res: Resource) -> list[Obj]:
    entry: Obj = {
        "name": res.plural,
        "singularName": res.singular,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": list(READ_VERBS) if res.read_only else list(ALL_VERBS),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.kind in ("Pod", "Service", "Deployment"):
        entry["categories"] = ["all"]
    entries = [entry]
    if res.has_status and not res.read_only:
        entries.append(_subresource(res, "status", res.kind, ["get", "patch", "update"]))
    if res.kind == "Pod":
        entries.append(_subresource(res, "exec", "PodExecOptions", ["create", "get"]))
        entries.append(_subresource(res, "log", "Pod", ["get"]))
    if res.kind == "Deployment":
        entries.append(_subresource(res, "scale", "Scale", ["get", "patch", "update"],
                                    group="autoscaling", version="v1"))  # fmt: skip
    return entries


def api_resource_list(group: str) -> Obj:
    """The APIResourceList of one group version."""
    resources = [e for r in RESOURCES if r.group == group for e in _resource_entries(r)]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version(group),
            "resources": resources}  # fmt: skip


def api_group(group: str) -> Obj:
    """The APIGroup of a named group."""
    version = {"groupVersion": group_version(group), "version": "v1"}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [version],
            "preferredVersion": version}  # fmt: skip


def _openapi_path(res: Resource) -> str:
    base = f"/apis/{res.group}/v1" if res.group else "/api/v1"
    scope = "/namespaces/{namespace}" if res.namespaced else ""
    return f"{base}{scope}/{res.plural}/{{name}}"


def openapi_v3_group(group: str) -> Obj:
    """A minimal OpenAPI v3 document: enough for kubectl to see that PATCH (and so create and
    apply) accepts `fieldValidation`, so it validates server-side instead of downloading
    schemas. No object schemas: `kubectl explain` does not work."""
    parameter = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}
    paths = {
        _openapi_path(res): {"patch": {
            "x-kubernetes-group-version-kind": {"group": res.group, "version": "v1",
                                                "kind": res.kind},
            "x-kubernetes-action": "patch",
            "parameters": [parameter],
            "responses": {"200": {"description": "OK"}},
        }}
        for res in RESOURCES if res.group == group and not res.read_only
    }  # fmt: skip
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths, "components": {"schemas": {}}}  # fmt: skip


def openapi_path(group: str) -> str:
    """`api/v1` or `apis/GROUP/v1`, as /openapi/v3 names group versions."""
    return f"apis/{group}/v1" if group else "api/v1"


def discovery_documents(port: int) -> dict[str, Obj]:
    """Every static discovery path and its body."""
    address = [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port}"}]
    docs: dict[str, Obj] = {
        "/version": VERSION_INFO,
        "/api": {"kind": "APIVersions", "versions": ["v1"],
                 "serverAddressByClientCIDRs": address},
        "/api/v1": api_resource_list(""),
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1",
                  "groups": [api_group(g) for g in GROUPS if g]},
    }  # fmt: skip
    for group in GROUPS[1:]:
        docs[f"/apis/{group}"] = api_group(group)
        docs[f"/apis/{group}/v1"] = api_resource_list(group)
    index = {}
    for group in GROUPS:
        doc = openapi_v3_group(group)
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16].upper()
        index[openapi_path(group)] = {
            "serverRelativeURL": f"/openapi/v3/{openapi_path(group)}?hash={digest}"
        }
        docs[f"/openapi/v3/{openapi_path(group)}"] = doc
    docs["/openapi/v3"] = {"paths": index}
    return docs


# -- tables (kubectl get) ----------------------------------------------------------------------


def age(stamp: str) -> str:
    """`42s`, `5m`, `3h`, `2d` since an RFC 3339 timestamp."""
    try:
        then = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return "<unknown>"
    seconds = int((datetime.datetime.now(datetime.UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _pod_cells(pod: Obj) -> list[Any]:
    status, spec = pod.get("status") or {}, pod["spec"]
    statuses = status.get("containerStatuses") or []
    ready = sum(bool(c.get("ready")) for c in statuses)
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    return [f"{ready}/{len(spec['containers'])}", status.get("phase", ""), restarts,
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>"]  # fmt: skip


def _service_cells(svc: Obj) -> list[Any]:
    spec, status = svc["spec"], svc.get("status") or {}
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or (
        "<pending>" if spec["type"] == "LoadBalancer" else spec.get("externalName", "<none>")
    )
    ports = (
        ",".join(
            f"{p['port']}"
            + (f":{p['nodePort']}" if p.get("nodePort") else "")
            + f"/{p['protocol']}"
            for p in spec.get("ports") or []
        )
        or "<none>"
    )
    selector = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items()) or "<none>"
    return [spec["type"], spec.get("clusterIP", "<none>"), external, ports, selector]


def _deployment_cells(dep: Obj) -> list[Any]:
    status = dep.get("status") or {}
    return [f"{status.get('readyReplicas', 0)}/{dep['spec']['replicas']}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0)]  # fmt: skip


def _endpoints_cells(ep: Obj) -> list[Any]:
    pairs = [f"{a['ip']}:{p['port']}" if s.get("ports") else a["ip"]
             for s in ep.get("subsets") or [] for a in s.get("addresses") or []
             for p in (s.get("ports") or [{}])]  # fmt: skip
    return [",".join(pairs[:3]) + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")
            or "<none>"]  # fmt: skip


def _node_cells(node: Obj) -> list[Any]:
    status = node["status"]
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])
    address = next(a["address"] for a in status["addresses"] if a["type"] == "InternalIP")
    version = status["nodeInfo"]["kubeletVersion"]
    return ["Ready" if ready else "NotReady", "<none>", version, address]


AGE = ("Age", 0)
TABLE_COLUMNS: Final[dict[str, tuple[list[tuple[str, int]], Callable[[Obj], list[Any]]]]] = {
    "Pod": ([("Ready", 0), ("Status", 0), ("Restarts", 0), AGE, ("IP", 1), ("Node", 1)],
            _pod_cells),
    "Service": ([("Type", 0), ("Cluster-IP", 0), ("External-IP", 0), ("Port(s)", 0), AGE,
                 ("Selector", 1)], _service_cells),
    "Deployment": ([("Ready", 0), ("Up-to-date", 0), ("Available", 0), AGE], _deployment_cells),
    "Endpoints": ([("Endpoints", 0), AGE], _endpoints_cells),
    "Node": ([("Status", 0), ("Roles", 0), AGE, ("Version", 0), ("Internal-IP", 1)],
             _node_cells),
    "Namespace": ([("Status", 0), AGE], lambda o: [(o.get("status") or {}).get("phase", "")]),
    "ConfigMap": ([("Data", 0), AGE], lambda o: [len(o.get("data") or {})]),
    "Secret": ([("Type", 0), ("Data", 0), AGE],
               lambda o: [o.get("type", ""), len(o.get("data") or {})]),
}  # fmt: skip


def as_table(kind: str, items: list[Obj], resource_version: str) -> Obj:
    """A meta.k8s.io/v1 Table, as kubectl asks for with `as=Table`."""
    extra, cells = TABLE_COLUMNS.get(kind, ([AGE], lambda o: []))
    columns = [("Name", 0), *extra]
    computed = [c[0] for c in extra if c != AGE]
    definitions = [{"name": n, "type": "string", "format": "name" if n == "Name" else "",
                    "description": n, "priority": p} for n, p in columns]  # fmt: skip
    rows = []
    for obj in items:
        values = dict(zip(computed, cells(obj), strict=True))
        values.update(Name=obj["metadata"]["name"], Age=age(obj["metadata"]["creationTimestamp"]))
        partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": obj["metadata"]}  # fmt: skip
        rows.append({"cells": [values[n] for n, _ in columns], "object": partial})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": definitions, "rows": rows}  # fmt: skip


def wants_table(request: web.Request) -> bool:
    """kubectl's human-readable output asks for server-side tables."""
    return "as=Table" in request.headers.get("Accept", "")


# -- routing -----------------------------------------------------------------------------------


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


SUBRESOURCES: Final = {"Pod": ("status", "exec", "log"), "Deployment": ("status", "scale")}


def verb_of(method: str, target: Target, query: Mapping[str, str]) -> str:
    """The API verb of a request (or a subresource action: exec, log)."""
    if target.sub:
        allowed = SUBRESOURCES.get(target.res.kind, ("status",) if target.res.has_status else ())
        if target.sub not in allowed:
            raise ApiError(404, "NotFound", NO_ROUTE)
        if target.sub in ("exec", "log"):
            ok = method in ("GET", "POST") if target.sub == "exec" else method == "GET"
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
    what = f'{res.qualified} "{target.name}"' if target.name and not target.sub else res.qualified
    resource = res.plural + (f"/{target.sub}" if target.sub else "")
    action = "create" if verb == "exec" else verb
    where = f' in the namespace "{target.namespace}"' if target.namespace else ""
    message = (f'{what} is forbidden: User "{user}" cannot {action} resource "{resource}" in API '
               f'group "{res.group}"{where}')  # fmt: skip
    return ApiError(403, "Forbidden", message, _details(res, target.name or ""))


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
    details = _details(res, obj["metadata"]["name"])
    details["uid"] = obj["metadata"].get("uid", "")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}  # fmt: skip


# -- exec --------------------------------------------------------------------------------------

V5_PROTOCOL: Final = "v5.channel.k8s.io"
V4_PROTOCOL: Final = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, STATUS, CLOSE = 0, 1, 2, 3, 255
CHUNK: Final = 1 << 16


def exit_code(returncode: int) -> int:
    """A shell-style exit code (128 + signal for a killed process)."""
    return 128 - returncode if returncode < 0 else returncode


def exec_status(code: int, argv: Sequence[str], message: str = "") -> Obj:
    """The channel-3 Status of a finished exec."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    text = message or (f"error executing command [{' '.join(argv)}], exit code {code}")
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {text}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def truthy(value: str | None) -> bool:
    """Query flag parsing (`true`, `1`)."""
    return (value or "").lower() in ("true", "1")


class ExecSession:
    """One exec stream: a process's pipes over the v4/v5 channel protocol."""

    def __init__(self, ws: web.WebSocketResponse, argv: list[str], stdin: bool) -> None:
        self.ws = ws
        self.argv = argv
        self.stdin = stdin
        self._send_lock = asyncio.Lock()
        self._gone = False

    async def run(self, start: Awaitable[asyncio.subprocess.Process]) -> None:
        """Start the process, stream it, report its exit and close the socket."""
        try:
            proc = await start
        except FileNotFoundError:
            await self._refuse(127, f'exec: "{self.argv[0]}": executable file not found in $PATH')
            return
        except Exception as exc:  # the exec handler could not run the command
            await self._refuse(126, f"exec failed: {exc}")
            return
        await self._stream(proc)

    async def _stream(self, proc: asyncio.subprocess.Process) -> None:
        reader = asyncio.get_running_loop().create_task(self._read_client(proc))
        try:
            if not self.stdin:
                self._close_stdin(proc)
            await asyncio.gather(self._pump(proc.stdout, STDOUT), self._pump(proc.stderr, STDERR))
            code = exit_code(await proc.wait())
            await self._send(bytes([STATUS]) + json.dumps(exec_status(code, self.argv)).encode())
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await self.ws.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _refuse(self, code: int, message: str) -> None:
        await self._send(bytes([STDERR]) + message.encode() + b"\n")
        status = exec_status(code, self.argv, message)
        await self._send(bytes([STATUS]) + json.dumps(status).encode())
        await self.ws.close()

    async def _send(self, frame: bytes) -> None:
        if self._gone:
            return
        try:
            async with self._send_lock:
                await self.ws.send_bytes(frame)
        except (ConnectionError, RuntimeError):
            self._gone = True

    async def _pump(self, stream: asyncio.StreamReader | None, channel: int) -> None:
        if stream is None:
            return
        prefix = bytes([channel])
        while chunk := await stream.read(CHUNK):
            await self._send(prefix + chunk)

    async def _read_client(self, proc: asyncio.subprocess.Process) -> None:
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY and msg.data:
                await self._on_frame(proc, msg.data[0], msg.data[1:])
            elif msg.type == WSMsgType.TEXT and msg.data:
                await self._on_frame(proc, ord(msg.data[0]), msg.data[1:].encode())
        self._gone = True
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # the client went away

    async def _on_frame(self, proc: asyncio.subprocess.Process, channel: int, data: bytes) -> None:
        if channel == STDIN and self.stdin and proc.stdin and not proc.stdin.is_closing():
            with contextlib.suppress(ConnectionError):
                proc.stdin.write(data)
                await proc.stdin.drain()
        elif channel == CLOSE and data[:1] == bytes([STDIN]):
            self._close_stdin(proc)

    @staticmethod
    def _close_stdin(proc: asyncio.subprocess.Process) -> None:
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()


def pick_container(pod: Obj, wanted: str | None) -> str:
    """The container asked for, else the default-container annotation, else the first."""
    names = [c["name"] for c in pod["spec"]["containers"]]
    if wanted:
        if wanted not in names:
            raise bad_request(f"container {wanted} is not valid for pod {pod['metadata']['name']}")
        return wanted
    annotations = pod["metadata"].get("annotations") or {}
    default = str(annotations.get("kubectl.kubernetes.io/default-container", ""))
    return default if default in names else names[0]


# -- the HTTP API of one cluster ---------------------------------------------------------------


class ClusterApi:
    """The aiohttp application serving one cluster's store."""

    def __init__(
        self, store: Store, exec_handler: ExecHandler, log_handler: LogHandler | None
    ) -> None:
        self.store = store
        self.exec_handler = exec_handler
        self.log_handler = log_handler
        self.port = 0
        self._streams: set[web.StreamResponse] = set()
        self._docs: dict[str, Obj] = {}

    def application(self) -> web.Application:
        """The aiohttp app (one catch-all route)."""
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{path:.*}", self.handle)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        for stream in list(self._streams):
            if isinstance(stream, web.WebSocketResponse):
                await stream.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Every request: static documents, then resources; errors become Status objects."""
        try:
            return await self._dispatch(request)
        except ApiError as err:
            return json_response(err.status(), err.code)
        except Exception as exc:
            log.exception("%s: %s %s failed", self.store.name, request.method, request.path)
            return json_response(ApiError(500, "InternalError", repr(exc)).status(), 500)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        secret = self.store.spec.secret
        path, known = strip_secret(request.path.rstrip("/") or "/", secret)
        if not known and bearer_token(request) != secret:
            raise ApiError(401, "Unauthorized", "Unauthorized: the lab's kubeconfig is needed")
        path, viewer = strip_viewer_prefix(path)
        viewer = viewer or bearer_token(request) == self.store.spec.viewer_token
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        if not self._docs:
            self._docs = discovery_documents(self.port)
        if path in self._docs:
            return json_response(self._docs[path])
        target = parse_target(path)
        verb = verb_of(request.method, target, request.query)
        if viewer and verb not in (*READ_VERBS, "log"):
            raise forbidden(target, verb, "viewer")
        handler = getattr(self, f"_do_{verb}")
        if verb in ("create", "update", "patch", "delete", "deletecollection") and (
            "All" in request.query.getall("dryRun", [])
        ):
            await request.read()  # cached: the handler's read() then never waits
            with self.store.dry_run():
                response: web.StreamResponse = await handler(request, target)
            return response
        response = await handler(request, target)
        return response

    # reads

    async def _do_get(self, request: web.Request, t: Target) -> web.StreamResponse:
        assert t.name is not None
        if t.sub == "scale":
            return json_response(self.store.scale(t.namespace or "", t.name))
        obj = self.store.get(t.res.kind, t.namespace, t.name)
        if obj is None:
            raise not_found(t.res, t.name)
        if wants_table(request):
            return json_response(as_table(t.res.kind, [obj], obj["metadata"]["resourceVersion"]))
        return json_response(obj)

    def _selected(self, request: web.Request, t: Target) -> list[Obj]:
        selector = parse_label_selector(request.query.get("labelSelector", ""))
        fields = parse_field_selector(request.query.get("fieldSelector", ""))
        return [copy.deepcopy(o) for o in self.store._select(t.res, t.namespace, selector, fields)]

    async def _do_list(self, request: web.Request, t: Target) -> web.StreamResponse:
        items = self._selected(request, t)
        version = str(self.store.resource_version)
        if wants_table(request):
            return json_response(as_table(t.res.kind, items, version))
        return json_response(
            {
                "kind": f"{t.res.kind}List",
                "apiVersion": t.res.api_version,
                "metadata": {"resourceVersion": version},
                "items": items,
            }
        )

    async def _do_watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        selector = parse_label_selector(request.query.get("labelSelector", ""))
        fields = list(parse_field_selector(request.query.get("fieldSelector", "")))
        if t.name is not None:
            fields.append(FieldTerm("metadata.name", True, t.name))
        queue = self.store.open_watch(t.res.kind, request.query.get("resourceVersion", ""))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        self._streams.add(response)
        try:
            await response.prepare(request)
            timeout = float(request.query.get("timeoutSeconds") or 1800)
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(timeout):
                    await self._stream_events(request, t, queue, selector, fields, response)
        finally:
            self.store.close_watch(queue)
            self._streams.discard(response)
        return response

    async def _stream_events(
        self, request: web.Request, t: Target, queue: asyncio.Queue[Event | None],
        selector: Selector, fields: list[FieldTerm], response: web.StreamResponse,
    ) -> None:  # fmt: skip
        table = wants_table(request)
        while (event := await queue.get()) is not None:
            obj = event.obj
            if event.kind != t.res.kind:
                continue
            if t.namespace and obj["metadata"].get("namespace") != t.namespace:
                continue
            if not (selector_matches(selector, labels_of(obj)) and fields_match(fields, obj)):
                continue
            if table:
                obj = as_table(t.res.kind, [obj], obj["metadata"]["resourceVersion"])
            line = json.dumps({"type": event.type, "object": obj}, separators=(",", ":"))
            await response.write(line.encode() + b"\n")

    # writes

    @staticmethod
    async def _body(request: web.Request) -> Any:
        if "protobuf" in request.headers.get("Content-Type", ""):
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an "
                           "unknown format - accepted media types include: application/json "
                           "(this lab API server does not speak protobuf)")  # fmt: skip
        try:
            return json.loads(await request.read() or b"null")
        except ValueError as exc:
            raise bad_request(f"the request body is not valid JSON: {exc}") from exc

    async def _do_create(self, request: web.Request, t: Target) -> web.StreamResponse:
        body = await self._body(request)
        return json_response(await self.store.create(t.res.kind, t.namespace, body), 201)

    async def _do_update(self, request: web.Request, t: Target) -> web.StreamResponse:
        assert t.name is not None
        body = await self._body(request)
        if t.sub == "scale":
            if not isinstance(body, dict):
                raise bad_request("the request body must be a JSON object")
            return json_response(await self.store.set_scale(t.namespace or "", t.name, body))
        return json_response(await self.store.replace(t.res.kind, t.namespace, t.name, body, t.sub))

    async def _do_patch(self, request: web.Request, t: Target) -> web.StreamResponse:
        assert t.name is not None
        body = await self._body(request)
        content_type = request.headers.get("Content-Type", "application/merge-patch+json")
        if t.sub == "scale":
            scale = apply_patch(self.store.scale(t.namespace or "", t.name), body, content_type)
            return json_response(await self.store.set_scale(t.namespace or "", t.name, scale))
        obj = await self.store.patch(t.res.kind, t.namespace, t.name, body, content_type, t.sub)
        return json_response(obj)

    async def _do_delete(self, request: web.Request, t: Target) -> web.StreamResponse:
        assert t.name is not None
        obj = await self.store.delete(t.res.kind, t.namespace, t.name)
        if t.res.kind in ("Pod", "Service", "Namespace"):
            if t.res.kind == "Namespace":
                obj["status"] = {"phase": "Terminating"}
                obj["metadata"]["deletionTimestamp"] = now()
            return json_response(obj)
        return json_response(success_status(t.res, obj))

    async def _do_deletecollection(self, request: web.Request, t: Target) -> web.StreamResponse:
        for obj in self._selected(request, t):
            m = obj["metadata"]
            if self.store.get(t.res.kind, m.get("namespace"), m["name"]) is not None:
                await self.store.delete(t.res.kind, m.get("namespace"), m["name"])
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Success"})  # fmt: skip

    # pods: exec and log

    def _pod(self, t: Target) -> Obj:
        assert t.name is not None
        pod = self.store.get("Pod", t.namespace, t.name)
        if pod is None:
            raise not_found(t.res, t.name)
        return pod

    async def _do_log(self, request: web.Request, t: Target) -> web.StreamResponse:
        pod = self._pod(t)
        container = pick_container(pod, request.query.get("container"))
        text = ""
        if self.log_handler is not None:
            text = await self.log_handler(self.store.name, t.namespace or "", pod["metadata"][
                "name"], container)  # fmt: skip
        tail = request.query.get("tailLines")
        if tail and tail.isdigit():
            lines = text.splitlines(keepends=True)
            text = "".join(lines[len(lines) - int(tail) :]) if int(tail) else ""
        return web.Response(text=text, content_type="text/plain")

    async def _do_exec(self, request: web.Request, t: Target) -> web.StreamResponse:
        pod = self._pod(t)
        name = pod["metadata"]["name"]
        if (pod.get("status") or {}).get("phase") != "Running":
            raise bad_request(f"pod {name} is not running")
        container = pick_container(pod, request.query.get("container"))
        argv = request.query.getall("command", [])
        if not argv:
            raise bad_request("you must specify at least 1 command")
        ws = web.WebSocketResponse(protocols=(V5_PROTOCOL, V4_PROTOCOL), max_msg_size=0)
        if not ws.can_prepare(request).ok:
            raise bad_request("Upgrade request required")
        self._streams.add(ws)
        try:
            await ws.prepare(request)
            start = self.exec_handler(self.store.name, t.namespace or "", name, container, argv)
            await ExecSession(ws, argv, truthy(request.query.get("stdin"))).run(start)
        finally:
            self._streams.discard(ws)
        return ws


# -- the server --------------------------------------------------------------------------------


class LabApiServer:
    """One in-memory API server per lab cluster, all in the running event loop."""

    def __init__(
        self,
        clusters: Sequence[ClusterSpec],
        exec_handler: ExecHandler,
        log_handler: LogHandler | None = None,
    ) -> None:
        names = [c.name for c in clusters]
        if len(set(names)) != len(names):
            raise ValueError(f"cluster names must be unique: {names}")
        self.specs = {c.name: c for c in clusters}
        self._subscribers: list[Subscriber] = []
        self.stores: dict[str, Store] = {c.name: Store(c, self._subscribers) for c in clusters}
        self.apis = {n: ClusterApi(s, exec_handler, log_handler) for n, s in self.stores.items()}
        self.ports: dict[str, int] = {}
        self._runners: list[web.AppRunner] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Deliver every event of every cluster to `subscriber` (in order per cluster)."""
        self._subscribers.append(subscriber)

    async def start(self) -> dict[str, int]:
        """Bind every listener; returns cluster -> port."""
        for name, api in self.apis.items():
            runner = web.AppRunner(api.application(), access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            self._runners.append(runner)
            site = web.TCPSite(runner, "127.0.0.1", self.specs[name].port)
            await site.start()
            api.port = self.ports[name] = int(runner.addresses[0][1])
            self.stores[name].start()
        return dict(self.ports)

    async def stop(self) -> None:
        """Close the listeners (open exec and watch streams too) and stop event delivery."""
        for store in self.stores.values():
            await store.stop()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    def write_kubeconfig(self, path: Path, context_prefix: str = "lab-") -> Path:
        """A kubeconfig for the started clusters (see `write_kubeconfig`)."""
        viewers = {n: s.viewer_token for n, s in self.specs.items()}
        secret = next((s.secret for s in self.specs.values()), "")
        return write_kubeconfig(path, self.ports, context_prefix, viewers, secret)


ADMIN_TOKEN: Final = "admin"


def write_kubeconfig(
    path: Path,
    clusters: Mapping[str, int],
    context_prefix: str = "lab-",
    users: Mapping[str, str] | None = None,
    secret: str = "",
) -> Path:
    """Write contexts `<prefix><cluster>` (admin) and `<prefix><cluster>-viewer` (read-only:
    the viewer token from `users`, cluster -> token, default "viewer", and the `/viewer` URL
    prefix, which is what makes kubectl read-only: it sends no token over plain http).
    The current context is the first cluster's."""
    users = users or {}
    admin = f"{context_prefix}admin"
    doc: Obj = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [],
        "contexts": [],
        "users": [{"name": admin, "user": {"token": ADMIN_TOKEN}}],
    }
    for name, port in clusters.items():
        ctx = f"{context_prefix}{name}"
        server = f"http://127.0.0.1:{port}" + (f"/s/{secret}" if secret else "")
        viewer = f"{ctx}-viewer"
        doc["clusters"] += [
            {"name": ctx, "cluster": {"server": server}},
            {"name": viewer, "cluster": {"server": server + VIEWER_PREFIX}},
        ]
        doc["users"].append({"name": viewer, "user": {"token": users.get(name, "viewer")}})
        doc["contexts"] += [
            {"name": c, "context": {"cluster": c, "user": u, "namespace": "default"}}
            for c, u in ((ctx, admin), (viewer, viewer))
        ]
    if clusters:
        doc["current-context"] = f"{context_prefix}{next(iter(clusters))}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the secret
    with os.fdopen(fd, "w") as out:
        out.write(yaml.safe_dump(doc, sort_keys=False))
    return path
