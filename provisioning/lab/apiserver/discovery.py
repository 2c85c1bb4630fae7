"""Discovery documents, `/version` and a stub OpenAPI v3."""

from __future__ import annotations

import hashlib
import json
from typing import Final

from provisioning.lab.apiserver.model import GROUPS, RESOURCES, Obj, Resource

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
    if res.review:
        return [{**entry, "singularName": res.singular, "verbs": ["create"]}]
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.kind in ("Pod", "Service", "Deployment", "ReplicaSet"):
        entry["categories"] = ["all"]
    entries = [entry]
    if res.has_status and not res.read_only:
        entries.append(_subresource(res, "status", res.kind, ["get", "patch", "update"]))
    if res.kind == "Pod":
        entries.append(_subresource(res, "attach", "PodAttachOptions", ["create", "get"]))
        entries.append(_subresource(res, "exec", "PodExecOptions", ["create", "get"]))
        entries.append(_subresource(res, "log", "Pod", ["get"]))
        entries.append(_subresource(res, "portforward", "PodPortForwardOptions", ["create", "get"]))
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
        for res in RESOURCES if res.group == group and not (res.read_only or res.review)
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
