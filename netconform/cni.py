"""What a cluster shows of its CNI's source-NAT settings, read defensively (a cluster without
the object, or a reader forbidden to see it, simply shows nothing).

The AWS VPC CNI (seed 001) source-NATs pod traffic leaving the VPC to the node's primary
address unless `AWS_VPC_K8S_CNI_EXTERNALSNAT` is true; `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS`
lists destinations kept unNATed. Both are env of the `aws-node` DaemonSet in kube-system."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from netconform.cluster import ClusterClient
from netconform.errors import NetconformError
from netconform.srcaddr import CNI_NOTE

EXTERNAL_SNAT = "AWS_VPC_K8S_CNI_EXTERNALSNAT"
EXCLUDE_CIDRS = "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"


def aws_node_env(daemonset: Any) -> dict[str, str] | None:
    """The aws-node container's plain env values; None when the object has no such container.
    Works on the client's model objects and on plain dicts (what a test builds)."""
    spec = _get(_get(_get(daemonset, "spec"), "template"), "spec")
    for container in _get(spec, "containers") or []:
        if _get(container, "name") == "aws-node":
            env = _get(container, "env") or []
            return {str(_get(e, "name")): str(_get(e, "value") or "") for e in env}
    return None


def aws_node_note(env: dict[str, str] | None) -> str:
    """Why traffic from this cluster's pods may be source-NATed ("" when nothing is known)."""
    if env is None:
        return ""
    external = env.get(EXTERNAL_SNAT, "")
    excluded = env.get(EXCLUDE_CIDRS, "")
    if external.lower() == "true":
        state = f"{EXTERNAL_SNAT}=true (the CNI does not SNAT; NAT must be on the path)"
    else:
        state = (
            f"{EXTERNAL_SNAT}={external or 'unset'} (the CNI SNATs pod traffic leaving the "
            f"VPC to the node's address), {EXCLUDE_CIDRS}={excluded or 'unset'} (add the "
            "other regions' pod CIDRs there, or set EXTERNALSNAT=true)"
        )
    return f"{CNI_NOTE} [{state}]"


def read_aws_node(cluster: ClusterClient) -> str:
    """The note for a cluster's aws-node DaemonSet ("" when it has none, or it cannot be read)."""
    api = k8s.AppsV1Api(cluster.api)
    try:
        daemonset = cluster.call(
            "read DaemonSet kube-system/aws-node",
            api.read_namespaced_daemon_set,
            "aws-node",
            "kube-system",
        )
    except (ApiException, NetconformError):
        return ""  # absent (404), not served by this API (the lab), or forbidden
    return aws_node_note(aws_node_env(daemonset))


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        camel = key.split("_")[0] + "".join(w.title() for w in key.split("_")[1:])
        return obj.get(key, obj.get(camel))
    return getattr(obj, key, None)
