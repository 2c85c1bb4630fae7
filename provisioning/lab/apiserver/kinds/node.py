"""Nodes: read-only objects made from the cluster spec when the store starts."""

from __future__ import annotations

import uuid
from typing import Final

from provisioning.lab.apiserver.model import NodeSpec, Obj
from provisioning.lab.apiserver.objects import now

NO_PRESSURE: Final = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


def node_object(node: NodeSpec) -> Obj:
    """The stored Node of `node`, created now."""
    stamp = now()
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": node.name,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": stamp,
            "labels": node_labels(node),
        },
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]} if node.pod_cidr else {},
        "status": node_status(node, stamp),
    }


def node_labels(node: NodeSpec) -> dict[str, str]:
    """A node's labels as stored."""
    return {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", **node.labels}  # fmt: skip


def node_status(node: NodeSpec, stamp: str) -> Obj:
    """A Ready node with its InternalIP."""
    pressure = [
        {"type": kind, "status": "False", "reason": reason, "message": message,
         "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}
        for kind, reason, message in NO_PRESSURE
    ]  # fmt: skip
    ready = {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "kubelet is posting ready status", "lastHeartbeatTime": stamp,
             "lastTransitionTime": stamp}  # fmt: skip
    capacity = {"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "20Gi"}
    return {
        "addresses": [{"type": "InternalIP", "address": node.internal_ip},
                      {"type": "Hostname", "address": node.name}],
        "conditions": [*pressure, ready],
        "capacity": capacity,
        "allocatable": capacity,
        "nodeInfo": {
            "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "lab://1.0",
            "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "v1.32.0",
            "machineID": "", "operatingSystem": "linux", "osImage": "netconform lab",
            "systemUUID": "",
        },
    }  # fmt: skip
