"""What the ingress, canary and tls checks share: where each cluster's ingress controller
answers, whether a cluster has one at all, route ids, and the suites' manifests pointed at
the topology's hosts and IngressClass."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from netconform.cluster import ClusterClient
from netconform.errors import NetconformError, WaitTimeoutError
from netconform.ingressaudit import Objects
from netconform.outcomes import Case
from netconform.topology import Topology
from netconform.waits import wait_until

#: The hosts the suites' manifests are written with; `retarget` swaps in the topology's.
DEFAULT_HOSTS = ("echo.example", "canary.example", "secure.example")


@dataclass(frozen=True, repr=False)
class Route:
    """A host and path through one cluster's ingress controller: `east/echo.example:/foo`."""

    cluster: str
    host: str
    path: str

    def __str__(self) -> str:
        return f"{self.cluster}/{self.host}:{self.path}"

    __repr__ = __str__


def route_of(case: Case) -> str:
    """The route slice of a case (`east/echo.example:/foo`)."""
    dst = case.destination
    return f"{dst.cluster}/{dst.host}:{dst.path}"


@dataclass(frozen=True)
class Controller:
    """One cluster's ingress controller as the suites reach it."""

    cluster: str
    address: str
    """Its LoadBalancer's address ("" when it has none)."""
    internal: str = ""
    """Its internal LoadBalancer's address, where one exists."""
    unsupported: str = ""
    """Why the cluster cannot be tested ("" when it can): `east has no IngressClass nginx`."""
    problem: str = ""
    """Why it cannot be reached although it exists: `Service ... has no address`."""


def _split(ref: str) -> tuple[str, str]:
    namespace, _, name = ref.partition("/")
    return (namespace, name) if name else ("default", namespace)


def lb_address(client: ClusterClient, ref: str) -> str:
    """The first `status.loadBalancer.ingress` address of Service `ref` ("" when none or
    no such Service)."""
    namespace, name = _split(ref)
    found = [s for s in client.objects("Service", namespace) if s.metadata.name == name]
    status = found[0].status.load_balancer if found and found[0].status else None
    for item in (status.ingress if status is not None else None) or []:
        if item.ip or item.hostname:
            return str(item.ip or item.hostname)
    return ""


def controller(client: ClusterClient, topology: Topology, cluster: str) -> Controller:
    """Where `cluster`'s ingress controller answers, after a bounded wait for its address."""
    settings = topology.ingress
    try:
        classes = {c.metadata.name for c in client.objects("IngressClass", "")}
    except NetconformError as err:
        return Controller(
            cluster, "", unsupported=f"cannot list IngressClasses in {cluster}: {err}"
        )
    if settings.ingress_class not in classes:
        return Controller(
            cluster, "", unsupported=f"{cluster} has no IngressClass {settings.ingress_class}"
        )
    fixed = topology.cluster(cluster).ingress_address
    internal = lb_address(client, settings.internal_service)
    if fixed:
        return Controller(cluster, fixed, internal)
    found = ""

    def addressed() -> bool:
        nonlocal found
        found = lb_address(client, settings.service)
        return bool(found)

    try:
        wait_until(
            addressed, timeout=topology.timeouts.load_balancer, name="load_balancer", interval=0.1
        )
    except WaitTimeoutError:
        return Controller(
            cluster,
            "",
            internal,
            problem=(
                f"{cluster}: ingress controller Service {settings.service} has no LoadBalancer "
                f"address within load_balancer ({topology.timeouts.load_balancer:g}s); set "
                f"clusters[].ingress_address if it is reached otherwise"
            ),
        )
    return Controller(cluster, found, internal)


def retarget(manifest: dict[str, Any], topology: Topology) -> dict[str, Any]:
    """`manifest` with the topology's hosts and IngressClass in place of the defaults."""
    obj = copy.deepcopy(manifest)
    if obj.get("kind") != "Ingress":
        return obj
    settings = topology.ingress
    hosts = dict(
        zip(
            DEFAULT_HOSTS,
            (settings.routing_host, settings.canary_host, settings.tls_host),
            strict=True,
        )
    )

    def swap(host: str) -> str:
        wildcard = host.startswith("*.")
        bare = host[2:] if wildcard else host
        return ("*." if wildcard else "") + hosts.get(bare, bare)

    spec = obj.setdefault("spec", {})
    spec["ingressClassName"] = settings.ingress_class
    for rule in spec.get("rules") or []:
        if rule.get("host"):
            rule["host"] = swap(rule["host"])
    for entry in spec.get("tls") or []:
        entry["hosts"] = [swap(h) for h in entry.get("hosts") or []]
    return obj


def unpublished(client: ClusterClient, namespace: str, name: str) -> bool:
    """Whether Ingress `name` carries no load balancer address in its status: its controller
    has not taken it up (ingress-nginx publishes the address once it serves the Ingress)."""
    found = [i for i in client.objects("Ingress", namespace) if i.metadata.name == name]
    if not found:
        return True
    status = found[0].status.load_balancer if found[0].status else None
    return not any(i.ip or i.hostname for i in (status.ingress if status else None) or [])


def stale_hint(cluster: str, name: str) -> str:
    return (
        f"{cluster}'s ingress controller has not taken up this run's Ingress {name} (no "
        "ADDRESS in its status): its configuration is stale, or the Ingress's class is "
        "not the controller's"
    )


def live_objects(
    client: ClusterClient, namespaces: Sequence[str], skip_labelled: dict[str, str] | None = None
) -> Objects:
    """The Ingresses, Services, ready endpoint counts and Secrets of `namespaces`, as plain
    API dicts (what `netconform.ingressaudit` reads); Ingresses carrying every label of
    `skip_labelled` left out."""

    def plain(obj: Any) -> dict[str, Any]:
        found: dict[str, Any] = client.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
        return found

    ingresses: list[dict[str, Any]] = []
    services: dict[tuple[str, str], dict[str, Any]] = {}
    ready: dict[tuple[str, str], int] = {}
    secrets: dict[tuple[str, str], dict[str, Any]] = {}
    for namespace in namespaces:
        for ing in client.objects("Ingress", namespace):
            labels = ing.metadata.labels or {}
            if not skip_labelled or any(labels.get(k) != v for k, v in skip_labelled.items()):
                ingresses.append(plain(ing))
        for svc in client.objects("Service", namespace):
            services[namespace, svc.metadata.name] = plain(svc)
        for eps in client.objects("Endpoints", namespace):
            count = sum(len(s.addresses or []) for s in eps.subsets or [])
            ready[namespace, eps.metadata.name] = count
        for secret in client.objects("Secret", namespace):
            secrets[namespace, secret.metadata.name] = plain(secret)
    return Objects(ingresses, services, ready, secrets)
