"""Typed reads of the kubernetes client's models for the lab tests.

Every field of the client's generated models is Optional (the OpenAPI schema marks almost
nothing required). These helpers read the fields a test relies on and fail the test with a
message naming the missing one, instead of an AttributeError on None three calls later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import urllib3
from kubernetes import client
from pydantic import BaseModel

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def need(value: T | None, what: str) -> T:
    """`value`, or the test fails saying the API object has no `what`."""
    if value is None:
        raise AssertionError(f"the API object has no {what}")
    return value


def model(kind: type[M], manifest: Mapping[str, Any]) -> M:
    """The model a manifest (wire names, camelCase) stands for. The client's API methods take a
    dict body the same way: their pydantic `validate_call` runs this very validation."""
    return kind.model_validate(manifest)


def unpreloaded(response: object) -> urllib3.BaseHTTPResponse:
    """What a call with `_preload_content=False` returns: the raw HTTP response (the client's
    stubs still name the model it would have decoded)."""
    assert isinstance(response, urllib3.BaseHTTPResponse), type(response)
    return response


# -- metadata ---------------------------------------------------------------------------------


class HasMetadata(Protocol):
    @property
    def metadata(self) -> client.V1ObjectMeta | None: ...


def meta(obj: HasMetadata) -> client.V1ObjectMeta:
    return need(obj.metadata, "metadata")


def name_of(obj: HasMetadata) -> str:
    return need(meta(obj).name, "metadata.name")


def labels_of(obj: HasMetadata) -> dict[str, str]:
    return need(meta(obj).labels, "metadata.labels")


def resource_version(obj: HasMetadata) -> int:
    return int(need(meta(obj).resource_version, "metadata.resourceVersion"))


def owner(obj: HasMetadata) -> client.V1OwnerReference:
    """The object's one owner reference."""
    refs = need(meta(obj).owner_references, "metadata.ownerReferences")
    assert len(refs) == 1, refs
    return refs[0]


# -- pods -------------------------------------------------------------------------------------


def pod_spec(pod: client.V1Pod) -> client.V1PodSpec:
    return need(pod.spec, "pod spec")


def pod_status(pod: client.V1Pod) -> client.V1PodStatus:
    return need(pod.status, "pod status")


def phase(pod: client.V1Pod) -> str:
    return need(pod_status(pod).phase, "status.phase")


def pod_ip(pod: client.V1Pod) -> str:
    return need(pod_status(pod).pod_ip, f"status.podIP (pod {pod.metadata and pod.metadata.name})")


def node_name(pod: client.V1Pod) -> str:
    return need(pod_spec(pod).node_name, "spec.nodeName")


# -- services ---------------------------------------------------------------------------------


def svc_spec(svc: client.V1Service) -> client.V1ServiceSpec:
    return need(svc.spec, "service spec")


def cluster_ip(svc: client.V1Service) -> str:
    return need(svc_spec(svc).cluster_ip, "spec.clusterIP")


def svc_ports(svc: client.V1Service) -> list[client.V1ServicePort]:
    return need(svc_spec(svc).ports, "spec.ports")


def node_port(svc: client.V1Service, index: int = 0) -> int:
    return need(svc_ports(svc)[index].node_port, f"spec.ports[{index}].nodePort")
