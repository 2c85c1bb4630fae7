"""The lab's cloud load balancer: `type: LoadBalancer` Services get an address, written to
`status.loadBalancer.ingress[].ip`, and the region router routes it to the cluster's nodes.

Design (MetalLB's BGP mode, or a cloud NLB with instance targets): the router holds one ECMP
route per address, a next hop per node that should receive its traffic (every node with
`externalTrafficPolicy: Cluster`; only nodes with a ready local endpoint with `Local`, as a
cloud health check on healthCheckNodePort would steer); kube-proxy's rules on the node then
DNAT to the endpoints (see `service_rules`). The router hashes on ports too, so connections
spread over the nodes.

External addresses come from the region's world range 198.18.i.0/24 (routed from the world to
the region router). Internal ones (the AWS, GCP and Azure internal annotations) come from the
last /24 of the region's VPC, reserved for internal load balancers as a cloud subnet is: the
peers' routers already send the whole VPC over the peering, and the world never routes
private addresses, so peered regions reach them and the world does not. In the overlap layout
(seed 003) they come from the region's slice of the shared network instead (see `layouts`).
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any, ClassVar

from netconform.errors import LabError
from provisioning.lab import network
from provisioning.lab.apiserver.model import Event
from provisioning.lab.controllers.base import Controller, LabContext
from provisioning.lab.network import RegionPlan

INTERNAL_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "networking.gke.io/load-balancer-type": "Internal",
    "cloud.google.com/load-balancer-type": "Internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
}
FIRST_HOST = 10
LAST_HOST = 250


def is_internal(svc: dict[str, Any]) -> bool:
    """True when one of the clouds' internal-LB annotations asks for a private address."""
    annotations = svc["metadata"].get("annotations") or {}
    return any(
        str(annotations.get(k, "")).lower() == v.lower() for k, v in INTERNAL_ANNOTATIONS.items()
    )


def ilb_cidr(region: RegionPlan) -> str:
    """The range of the region's internal load balancers: the last /24 of its VPC, or its
    slice of a shared network (the overlap layout)."""
    return region.ilb_cidr


def wants_lb(svc: dict[str, Any]) -> bool:
    """A LoadBalancer Service this controller serves (a foreign loadBalancerClass is not)."""
    spec = svc["spec"]
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


class LoadBalancers(Controller):
    name: ClassVar[str] = "load-balancers"
    watches: ClassVar[frozenset[str]] = frozenset({"Service", "Endpoints"})

    def __init__(self) -> None:
        self._dirty: set[str] = set()
        self._lock = asyncio.Lock()
        self._addresses: dict[tuple[str, str, str], str] = {}
        """(cluster, namespace, name) -> the address it holds."""
        self._routed: dict[str, set[str]] = {}

    async def start(self, lab: LabContext) -> None:
        await super().start(lab)
        for region in lab.plan.regions:
            await hash_on_ports(region)

    async def on_event(self, cluster: str, event: Event) -> None:
        self._dirty.add(cluster)
        self.lab.tasks.spawn(self._sync())

    async def _sync(self) -> None:
        async with self._lock:
            while self._dirty:
                await self._sync_cluster(self._dirty.pop())

    async def _sync_cluster(self, cluster: str) -> None:
        store = self.lab.store(cluster)
        services = [s for s in store.list("Service") if wants_lb(s)]
        endpoints = {
            (e["metadata"]["namespace"], e["metadata"]["name"]): e for e in store.list("Endpoints")
        }
        live = {(cluster, s["metadata"]["namespace"], s["metadata"]["name"]) for s in services}
        for key in [k for k in self._addresses if k[0] == cluster and k not in live]:
            del self._addresses[key]
        routes: dict[str, list[str]] = {}
        for svc in services:
            meta = svc["metadata"]
            address = self._address(cluster, svc)
            ingress = [{"ip": address, "ipMode": "VIP"}]
            current = (svc.get("status") or {}).get("loadBalancer") or {}
            if current.get("ingress") != ingress:
                await store.set_service_status(
                    meta["namespace"], meta["name"], {"loadBalancer": {"ingress": ingress}}
                )
            eps = endpoints.get((meta["namespace"], meta["name"]))
            routes[address] = self._next_hops(cluster, svc, eps)
        await asyncio.to_thread(self._program, cluster, routes)

    def _address(self, cluster: str, svc: dict[str, Any]) -> str:
        key = (cluster, svc["metadata"]["namespace"], svc["metadata"]["name"])
        internal = is_internal(svc)
        region = self.lab.region(cluster)
        pool = ipaddress.IPv4Network(ilb_cidr(region) if internal else region.lb_cidr)
        held = self._addresses.get(key)
        if held is not None and ipaddress.IPv4Address(held) in pool:
            return held
        taken = set(self._addresses.values())
        for host in range(FIRST_HOST, min(LAST_HOST, pool.num_addresses - 2) + 1):
            candidate = str(pool.network_address + host)
            if candidate not in taken:
                self._addresses[key] = candidate
                return candidate
        raise LabError(f"{cluster}: no load balancer addresses left in {pool}")

    def _next_hops(
        self, cluster: str, svc: dict[str, Any], eps: dict[str, Any] | None
    ) -> list[str]:
        nodes = self.lab.region(cluster).nodes
        if svc["spec"].get("externalTrafficPolicy") != "Local":
            return [n.ip for n in nodes]
        ready = {
            addr.get("nodeName")
            for subset in (eps or {}).get("subsets") or []
            for addr in subset.get("addresses") or []
        }
        return [n.ip for n in nodes if n.name in ready]

    def _program(self, cluster: str, routes: dict[str, list[str]]) -> None:
        """One ECMP route per address in the region router (blackhole: no healthy node)."""
        region = self.lab.region(cluster)
        lines = []
        for address, hops in sorted(routes.items()):
            if hops:
                nexthops = " ".join(f"nexthop via {ip} dev br0" for ip in hops)
                lines.append(f"route replace {address}/32 {nexthops}")
            else:
                lines.append(f"route replace blackhole {address}/32")
        gone = self._routed.get(cluster, set()) - set(routes)
        lines += [f"route del {address}/32" for address in sorted(gone)]
        network.ip_batch(region.router_netns, lines)
        self._routed[cluster] = set(routes)


async def hash_on_ports(region: RegionPlan) -> None:
    """Spread connections over ECMP next hops by their ports too (L4 hash)."""
    await asyncio.to_thread(
        network.sysctl, region.router_netns, "net.ipv4.fib_multipath_hash_policy=1"
    )
