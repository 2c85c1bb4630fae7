"""What every cluster starts with: the system namespaces, the `kubernetes` Service and its
Endpoints, and the nodes."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Final

from provisioning.lab.apiserver.kinds.node import node_object
from provisioning.lab.apiserver.model import BY_KIND, Obj

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store

SYSTEM_NAMESPACES: Final = ("default", "kube-system", "kube-public", "kube-node-lease")
NO_ENDPOINTS_NOTE: Final = (
    "the lab API server listens on the host's loopback, which pods cannot reach: this "
    "Service has no endpoints, so connections from pods to it are refused"
)


def kubernetes_service(service_cidr: str) -> Obj:
    """The `kubernetes` Service: the first address of the service range, port 443."""
    network = ipaddress.ip_network(service_cidr, strict=False)
    ip = str(network.network_address + 1)
    return {
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                 "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                            "targetPort": 6443}]},
    }  # fmt: skip


def kubernetes_endpoints() -> Obj:
    """Its Endpoints: honest about the lab, so empty (see NO_ENDPOINTS_NOTE)."""
    return {
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
                     "annotations": {"netconform.lab/note": NO_ENDPOINTS_NOTE}},
        "subsets": [],
    }  # fmt: skip


def bootstrap(store: Store) -> None:
    """Create what a fresh cluster holds."""
    for ns in dict.fromkeys((*SYSTEM_NAMESPACES, *store.spec.namespaces)):
        store.create_now(BY_KIND["Namespace"], None, {"metadata": {"name": ns}})
    store.create_now(BY_KIND["Service"], "default", kubernetes_service(store.spec.service_cidr))
    store.create_now(BY_KIND["Endpoints"], "default", kubernetes_endpoints())
    for node in store.spec.nodes:
        store.commit_node(node_object(node))
