"""In-memory Kubernetes API subset for the embedded network lab.

One aiohttp listener per cluster on 127.0.0.1 serves enough of core/v1, apps/v1 and
networking.k8s.io/v1 for the official Python client and kubectl: CRUD with label and field
selectors, watch, dry run, a tiny scheduler, pod exec
over WebSocket (v5/v4 channel protocols), pod logs, server-side tables and a stub OpenAPI v3
(so `kubectl apply` validates server-side). Bodies in JSON or Kubernetes protobuf (what
kubectl's typed commands send), each checked against the published schema of its kind
(`validation`, honouring `fieldValidation`); answers in JSON, or protobuf for a client that
accepts only that (`bodies`, `protobuf`, `protobuf_encode`).

Identity: a request is the read-only viewer when it carries the cluster's viewer token or
its path starts with `/viewer` (kubectl sends no token to a plain-http server, so viewer
kubeconfig contexts use `http://127.0.0.1:PORT/viewer`); everything else is admin.

What a pod *is* stays outside: subscribers see every change as an `Event`, and the exec and
log handlers run commands in pods.

Modules: `model` (specs, events, served resources), `errors`, `objects`, `selectors`,
`patches`, `bodies` (request bodies in, answers out), `protobuf` and `protobuf_encode` (the
wire format, from the table `protobuf_gen` writes), `validation`, `store` (storage and
settling) with `watch` (history, watches, subscribers) and `kinds` (admission per kind, in a
table), `discovery`, `tables`, `routing` (URLs, verbs, identity), `http` (the aiohttp app),
`execstream` (exec over WebSocket), `kubeconfig`, `server`. The deployment and endpoints
controllers are in `provisioning.lab.controllers`.
"""

from __future__ import annotations

from provisioning.lab.apiserver.errors import ApiError
from provisioning.lab.apiserver.kubeconfig import ADMIN_TOKEN, write_kubeconfig
from provisioning.lab.apiserver.model import ClusterSpec, Event, ExecHandler, LogHandler, NodeSpec
from provisioning.lab.apiserver.patches import apply_patch, json_patch, merge_patch, strategic_merge
from provisioning.lab.apiserver.selectors import parse_label_selector, selector_matches
from provisioning.lab.apiserver.server import LabApiServer
from provisioning.lab.apiserver.store import Store
from provisioning.lab.apiserver.watch import Subscriber

__all__ = [
    "ADMIN_TOKEN",
    "ApiError",
    "ClusterSpec",
    "Event",
    "ExecHandler",
    "LabApiServer",
    "LogHandler",
    "NodeSpec",
    "Store",
    "Subscriber",
    "apply_patch",
    "json_patch",
    "merge_patch",
    "parse_label_selector",
    "selector_matches",
    "strategic_merge",
    "write_kubeconfig",
]
