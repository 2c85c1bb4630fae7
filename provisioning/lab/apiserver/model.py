"""Public types of the lab API server: cluster specs, events, served resources."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

Obj = dict[str, Any]


@dataclass(frozen=True)
class NodeSpec:
    """A node of a lab cluster."""

    name: str
    internal_ip: str
    labels: dict[str, str] = field(default_factory=dict)
    pod_cidr: str = ""
    """The node's slice of the pod range (`spec.podCIDR`), "" when the plan has none."""


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


ExecHandler = Callable[[str, str, str, str, list[str]], Awaitable[asyncio.subprocess.Process]]
LogHandler = Callable[[str, str, str, str, bool], Awaitable[str]]
"""(cluster, namespace, pod, container, previous) -> the log text."""


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
    review: bool = False
    """Create-only and never stored: answered from the request (access reviews)."""

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
AUTHORIZATION = "authorization.k8s.io"
DISCOVERY = "discovery.k8s.io"
RESOURCES: Final = (
    Resource("Namespace", "namespaces", "", False, ("ns",), has_status=True),
    Resource("Node", "nodes", "", False, ("no",), has_status=True, read_only=True),
    Resource("Pod", "pods", "", True, ("po",), has_status=True),
    Resource("Service", "services", "", True, ("svc",), has_status=True),
    Resource("Endpoints", "endpoints", "", True, ("ep",)),
    Resource("ConfigMap", "configmaps", "", True, ("cm",)),
    Resource("Secret", "secrets", "", True),
    Resource("Event", "events", "", True, ("ev",)),
    Resource("EndpointSlice", "endpointslices", DISCOVERY, True),
    Resource("Deployment", "deployments", "apps", True, ("deploy",), has_status=True),
    Resource("ReplicaSet", "replicasets", "apps", True, ("rs",), has_status=True),
    Resource("Ingress", "ingresses", NETWORKING, True, ("ing",), has_status=True),
    Resource("IngressClass", "ingressclasses", NETWORKING, False),
    Resource("NetworkPolicy", "networkpolicies", NETWORKING, True, ("netpol",)),
    Resource(
        "SelfSubjectAccessReview", "selfsubjectaccessreviews", AUTHORIZATION, False, review=True
    ),
    Resource(
        "SelfSubjectRulesReview", "selfsubjectrulesreviews", AUTHORIZATION, False, review=True
    ),
)
BY_KIND: Final = {r.kind: r for r in RESOURCES}
GROUPS: Final = ("", "apps", DISCOVERY, NETWORKING, AUTHORIZATION)
