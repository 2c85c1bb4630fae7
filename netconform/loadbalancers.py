"""LoadBalancer Services' addresses, with the named `load_balancer` wait: what every check
through a cloud (or the lab's) load balancer needs first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netconform.cluster import ClusterClient
from netconform.errors import WaitTimeoutError
from netconform.outcomes import Endpoint, load_balancer
from netconform.waits import wait_until


def lb_address(client: ClusterClient, namespace: str, name: str) -> str:
    """The first IP of the Service's `status.loadBalancer.ingress` ("" while pending)."""
    svc = next((s for s in client.objects("Service", namespace) if s.metadata.name == name), None)
    status: Any = svc.status.load_balancer if svc is not None and svc.status else None
    ingress = (status.ingress if status is not None else None) or []
    return next((str(i.ip) for i in ingress if i.ip), "")


def any_lb_address(clients: Mapping[str, ClusterClient]) -> bool:
    """Some Service of type LoadBalancer, anywhere, holds an address (an implementation)."""
    return any(
        (s.status.load_balancer and s.status.load_balancer.ingress)
        for c in clients.values()
        for s in c.objects("Service", "")
        if s.spec.type == "LoadBalancer"
    )


def wait_load_balancers(
    clients: Mapping[str, ClusterClient], namespaces: Mapping[str, str], name: str, timeout: float
) -> dict[str, Endpoint]:
    """cluster -> the LoadBalancer Service `name` of its namespace by its address, once every
    cluster's has one (named wait `load_balancer`). {} when none got one and no Service of
    type LoadBalancer anywhere holds an address: the clusters have no implementation (a
    check's requirement says so); some but not all: a WaitTimeoutError naming the others."""
    found: dict[str, str] = {}

    def all_addressed() -> bool:
        for cluster, client in clients.items():
            found[cluster] = found.get(cluster) or lb_address(client, namespaces[cluster], name)
        return all(found.values())

    try:
        wait_until(all_addressed, timeout=timeout, name="load_balancer", interval=0.1)
    except WaitTimeoutError:
        if not any(found.values()) and not any_lb_address(clients):
            return {}
        missing = sorted(c for c, ip in found.items() if not ip)
        raise WaitTimeoutError(
            f"LoadBalancer Service {name} got no address within load_balancer ({timeout:g}s) "
            f"in cluster(s) {', '.join(missing)}; expected status.loadBalancer.ingress[].ip, "
            "observed <pending>"
        ) from None
    return {c: load_balancer(c, f"{namespaces[c]}/{name}", ip) for c, ip in found.items()}
