"""The protobuf bodies of access reviews, which kubectl's typed client sends protobuf-encoded
(`k8s\\0` envelope around a `runtime.Unknown`). Only the string fields `kubectl auth can-i`
sets are read, by field number from k8s.io/api/authorization/v1/generated.proto; general
protobuf support for the stored kinds is a separate part of the server."""

from __future__ import annotations

from typing import Final

from provisioning.lab.apiserver.errors import bad_request
from provisioning.lab.apiserver.model import Obj

MAGIC: Final = b"k8s\x00"
RESOURCE_ATTRIBUTES: Final = ("namespace", "verb", "group", "version", "resource",
                              "subresource", "name")  # fmt: skip
NON_RESOURCE_ATTRIBUTES: Final = ("path", "verb")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise bad_request("truncated protobuf body")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def fields(data: bytes) -> dict[int, bytes]:
    """The length-delimited fields of one message, by number (varints are skipped)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            out[number] = data[pos : pos + size]
            pos += size
        else:
            raise bad_request(f"unsupported protobuf wire type {wire}")
    return out


def _strings(data: bytes, names: tuple[str, ...]) -> Obj:
    got = fields(data)
    return {name: got[n + 1].decode() for n, name in enumerate(names) if n + 1 in got}


def review_from_protobuf(body: bytes) -> Obj:
    """A SelfSubjectAccessReview or SelfSubjectRulesReview as its JSON form."""
    if not body.startswith(MAGIC):
        raise bad_request("a protobuf body must start with the k8s\\0 envelope")
    unknown = fields(body[len(MAGIC) :])
    type_meta = _strings(unknown.get(1, b""), ("apiVersion", "kind"))
    spec = fields(fields(unknown.get(2, b"")).get(2, b""))
    if type_meta.get("kind") == "SelfSubjectRulesReview":
        return {**type_meta, "spec": _strings(fields(unknown[2]).get(2, b""), ("namespace",))}
    out: Obj = {}
    if 1 in spec:
        out["resourceAttributes"] = _strings(spec[1], RESOURCE_ATTRIBUTES)
    if 2 in spec:
        out["nonResourceAttributes"] = _strings(spec[2], NON_RESOURCE_ATTRIBUTES)
    return {**type_meta, "spec": out}
