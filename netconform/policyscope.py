"""What generic NetworkPolicy mode judges besides the suite's own probe pods: the probe-able
pods of the users' namespaces, read live.

A pod is probe-able when it runs on the pod network (not hostNetwork: NetworkPolicy does not
apply to it), has its IP, is not being deleted, and declares a TCP containerPort (what is
probed: a connect to each). Judged are every namespace holding such pods but the region
namespaces (the suite's probe pods stand there) and the suite's own (`SUITE_NAMESPACES`, each
judged by its own check), or only the topology's `network_policy.namespaces` when it names
some. The suite's own workloads (`app.kubernetes.io/managed-by=netconform`) are never targets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netconform.cluster import SUITE_NAMESPACES, ClusterClient
from netconform.outcomes import Endpoint
from netconform.topology import PolicySettings

MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass(frozen=True)
class Target:
    """A user's pod probed as a destination."""

    endpoint: Endpoint
    namespace: str
    ports: tuple[int, ...]
    """Its declared TCP containerPorts."""


def tcp_ports(pod: Any) -> tuple[int, ...]:
    """The declared TCP ports of a probe-able pod (a client model V1Pod); () when it is not."""
    spec, status, meta = pod.spec, pod.status, pod.metadata
    if spec is None or status is None or spec.host_network or meta.deletion_timestamp:
        return ()
    if status.phase != "Running" or not status.pod_ip:
        return ()
    ports = {
        p.container_port
        for c in spec.containers or []
        for p in c.ports or []
        if (p.protocol or "TCP") == "TCP"
    }
    return tuple(sorted(ports))


def judged(namespace: str, skip: Iterable[str], settings: PolicySettings) -> bool:
    """Whether generic mode judges a namespace's pods and policies."""
    if settings.namespaces:
        return namespace in settings.namespaces
    return namespace not in (*SUITE_NAMESPACES, *skip)


def targets(
    cluster: str, client: ClusterClient, skip: Iterable[str], settings: PolicySettings
) -> list[Target]:
    """The probe-able pods of the judged namespaces of one cluster, by namespace and name."""
    skip = tuple(skip)
    found = []
    for pod in client.objects("Pod", ""):
        meta = pod.metadata
        if (meta.labels or {}).get(MANAGED_BY) == "netconform":
            continue
        if not judged(meta.namespace, skip, settings):
            continue
        ports = tcp_ports(pod)
        if ports:
            endpoint = Endpoint(cluster, meta.name, pod.status.pod_ip, pod.spec.node_name or "")
            found.append(Target(endpoint, meta.namespace, ports))
    return sorted(found, key=lambda t: (t.namespace, t.endpoint.name))
