"""JSON-shaped objects to Kubernetes protobuf: the answer for a client that accepts nothing else.

The inverse of `protobuf.decode`, driven by the same field table. Keys the table does not
know for a message are refused (ProtobufError), never dropped.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from provisioning.lab.apiserver.protobuf import (
    MAGIC,
    META,
    Field,
    Obj,
    ProtobufError,
    message_of,
    table,
)


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _delimited(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


def _time(value: Any) -> bytes:
    if not value:
        return b""
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    seconds = int(moment.timestamp())
    out = _key(1, 0) + _varint(seconds)
    return out + (_key(2, 0) + _varint(moment.microsecond * 1000) if moment.microsecond else b"")


def _int_or_string(value: Any) -> bytes:
    if isinstance(value, str):
        return _key(1, 0) + _varint(1) + _delimited(3, value.encode())
    return _key(1, 0) + _varint(0) + _key(2, 0) + _varint(int(value))


def _raw_json(value: Any) -> bytes:
    return _delimited(1, json.dumps(value, separators=(",", ":")).encode())


SPECIAL_ENCODERS: Final[dict[str, Callable[[Any], bytes]]] = {
    f"{META}.Time": _time,
    f"{META}.MicroTime": _time,
    f"{META}.FieldsV1": _raw_json,
    "k8s.io.apimachinery.pkg.runtime.RawExtension": _raw_json,
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": _int_or_string,
    "k8s.io.apimachinery.pkg.api.resource.Quantity": lambda v: _delimited(1, str(v).encode()),
}


def _value(number: int, type_: str, value: Any) -> bytes:
    if type_ == "string":
        return _delimited(number, str(value).encode())
    if type_ == "bytes":
        return _delimited(number, base64.b64decode(value))
    if type_ in ("int32", "int64", "bool"):
        return _key(number, 0) + _varint(int(value))
    if type_ == "double":
        return _key(number, 1) + struct.pack("<d", float(value))
    return _delimited(number, encode_message(type_, value))


def _field(number: int, field: Field, value: Any) -> bytes:
    if field.type.startswith("map:"):
        _, key_type, value_type = field.type.split(":")
        return b"".join(
            _delimited(number, _value(1, key_type, k) + _value(2, value_type, v))
            for k, v in sorted(value.items())
        )
    if field.repeated:
        return b"".join(_value(number, field.type, item) for item in value)
    return _value(number, field.type, value)


def _inline_keys(message: str) -> set[str]:
    keys: set[str] = set()
    for field in table()[message].values():
        keys |= _inline_keys(field.type) if field.inline else {field.name}
    return keys


def encode_message(message: str, obj: Any) -> bytes:
    """One message's bytes from its Kubernetes JSON."""
    if message in SPECIAL_ENCODERS:
        return SPECIAL_ENCODERS[message](obj)
    if message not in table() or not isinstance(obj, dict):
        raise ProtobufError(f"cannot encode {obj!r} as {message}")
    out, used = bytearray(), set[str]()
    for number, field in sorted(table()[message].items()):
        if field.inline:
            inner = {k: v for k, v in obj.items() if k in _inline_keys(field.type)}
            used |= inner.keys()
            out += _delimited(number, encode_message(field.type, inner)) if inner else b""
        elif obj.get(field.name) is not None:
            used.add(field.name)
            out += _field(number, field, obj[field.name])
    unknown = set(obj) - used - {"kind", "apiVersion"}
    if unknown:
        raise ProtobufError(f"{message.rsplit('.', 1)[-1]} has no field {sorted(unknown)[0]!r}")
    return bytes(out)


def encode(obj: Obj) -> bytes:
    """An object as a `k8s\\0` envelope (runtime.Unknown with typeMeta and raw)."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    raw = encode_message(message_of(api_version, kind), obj)
    type_meta = _delimited(1, api_version.encode()) + _delimited(2, kind.encode())
    return MAGIC + _delimited(1, type_meta) + _delimited(2, raw)
