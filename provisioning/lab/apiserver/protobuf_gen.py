"""Build `protobuf_fields.json`, the field table `protobuf` decodes and encodes with.

Run by a developer, never at install time (installs reach only package registries, and no
registry package ships the Kubernetes `.proto` files): with checkouts of kubernetes/api and
kubernetes/apimachinery at the version the lab follows,

    python -m provisioning.lab.apiserver.protobuf_gen API_DIR APIMACHINERY_DIR > \
        provisioning/lab/apiserver/protobuf_fields.json

It reads facts of the wire format only: from each `generated.proto`, every message's field
numbers, names and protobuf types; from the Go `types.go` beside it, what JSON makes of each
field (its JSON name, `omitempty`, `inline`, and whether the Go field is a pointer: gogo
protobuf writes every non-pointer scalar even when zero, so a zero is dropped on decoding
only where Go's JSON encoder would drop it).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Final

PACKAGES: Final = (
    ("api", "core/v1", "k8s.io.api.core.v1"),
    ("api", "apps/v1", "k8s.io.api.apps.v1"),
    ("api", "networking/v1", "k8s.io.api.networking.v1"),
    ("api", "authorization/v1", "k8s.io.api.authorization.v1"),
    ("api", "autoscaling/v1", "k8s.io.api.autoscaling.v1"),
    ("api", "batch/v1", "k8s.io.api.batch.v1"),
    ("api", "events/v1", "k8s.io.api.events.v1"),
    ("apimachinery", "pkg/apis/meta/v1", "k8s.io.apimachinery.pkg.apis.meta.v1"),
)
"""(checkout, directory, proto package) of the messages the lab's kinds are made of (and of
kinds a lab may serve next: access reviews, Scale, Jobs, events.k8s.io Events)."""

MESSAGE = re.compile(r"^message (\w+) \{(.*?)^\}", re.M | re.S)
FIELD = re.compile(r"^\s*(optional|repeated) ([\w.]+) (\w+) = (\d+)", re.M)
MAP_FIELD = re.compile(r"^\s*map<(\w+), ([\w.]+)> (\w+) = (\d+)", re.M)
STRUCT = re.compile(r"^type (\w+) struct \{(.*?)^\}", re.M | re.S)
GO_FIELD = re.compile(r"^\s*(?:(\w+)\s+)?([][*\w.]+)\s+`([^`]*)`", re.M)
TAG = re.compile(r'(\w+):"([^"]*)"')
Go = dict[tuple[str, int], tuple[str, str]]


def qualify(type_name: str, package: str) -> str:
    """A proto type as the table names it: scalars bare, messages fully qualified."""
    if type_name.startswith("."):
        return type_name[1:]
    if type_name in ("string", "bytes", "bool", "int32", "int64", "double", "float"):
        return type_name
    return f"{package}.{type_name}"


def go_fields(source: str) -> Go:
    """(struct, field number) -> (JSON name, flags) from Go: flags `p` pointer, `o` omitempty,
    `i` inline (the JSON name is "" then)."""
    flags: dict[tuple[str, int], tuple[str, str]] = {}
    for struct, body in STRUCT.findall(source):
        for line in body.splitlines():
            if line.strip().startswith("//"):
                continue
            match = GO_FIELD.match(line)
            if match is None:
                continue
            _, go_type, raw_tags = match.groups()
            tags = dict(TAG.findall(raw_tags))
            parts = tags.get("protobuf", "").split(",")
            if len(parts) < 2 or not parts[1].isdigit():
                continue  # no wire field (`protobuf:"-"`)
            number = int(parts[1])
            json_tag = tags.get("json", "").split(",")
            flag = "p" if go_type.startswith("*") else ""
            flag += "o" if "omitempty" in json_tag else ""
            flag += "i" if json_tag[0] == "" else ""
            flags[(struct, number)] = (json_tag[0], flag)
    return flags


def messages(proto: str, package: str, go: Go) -> dict[str, object]:
    """Every message of one `generated.proto`: number -> [JSON name, type, flags]."""
    table: dict[str, object] = {}
    for name, body in MESSAGE.findall(proto):
        fields: dict[str, list[str]] = {}
        for label, type_name, field, number in FIELD.findall(body):
            json_name, flag = go.get((name, int(number)), (field, ""))
            flag += "r" if label == "repeated" else ""
            fields[number] = [json_name or field, qualify(type_name, package), flag]
        for key, value, field, number in MAP_FIELD.findall(body):
            json_name, flag = go.get((name, int(number)), (field, ""))
            map_type = f"map:{qualify(key, package)}:{qualify(value, package)}"
            fields[number] = [json_name or field, map_type, flag]
        table[f"{package}.{name}"] = dict(sorted(fields.items(), key=lambda kv: int(kv[0])))
    return table


def build(roots: dict[str, Path]) -> dict[str, object]:
    """The whole table from the checkouts."""
    table: dict[str, object] = {}
    for checkout, directory, package in PACKAGES:
        folder = roots[checkout] / directory
        flags: Go = {}
        for go in sorted(folder.glob("*.go")):
            if not go.name.endswith("_test.go"):
                flags.update(go_fields(go.read_text()))
        table.update(messages((folder / "generated.proto").read_text(), package, flags))
    return table


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: protobuf_gen API_DIR APIMACHINERY_DIR", file=sys.stderr)
        return 2
    table = build({"api": Path(argv[0]), "apimachinery": Path(argv[1])})
    json.dump(table, sys.stdout, indent=0, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
