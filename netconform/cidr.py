"""Address ranges between clusters: overlap detection, pairs and peers from the topology.

Pure functions over `Cluster` values; nothing here talks to a cloud.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations, permutations

from netconform.errors import TopologyError
from netconform.topology import Cluster, Topology

IPv4 = ipaddress.IPv4Network


@dataclass(frozen=True)
class Overlap:
    """Two clusters whose address ranges share addresses (seed 003: both 10.120.0.0/16)."""

    a: str
    """The first cluster, in topology order."""
    a_cidr: str
    """The range of `a` that overlaps."""
    b: str
    """The second cluster."""
    b_cidr: str
    """The range of `b` that overlaps."""

    @property
    def message(self) -> str:
        return (
            f"clusters {self.a} and {self.b} overlap: "
            f"{self.a_cidr} ({self.a}) and {self.b_cidr} ({self.b})"
        )


def network_cidrs(cluster: Cluster) -> tuple[str, ...]:
    """The cluster network's ranges (VPC/VNet address space), or its pod CIDRs if none given."""
    if cluster.network is not None and cluster.network.cidrs:
        return cluster.network.cidrs
    return cluster.pod_cidrs


def routed_cidrs(cluster: Cluster) -> tuple[str, ...]:
    """What peers must route to: the network ranges plus pod ranges outside them."""
    nets = network_cidrs(cluster)
    extra = tuple(p for p in cluster.pod_cidrs if not covered(p, nets))
    return nets + extra


def covered(cidr: str, by: Iterable[str]) -> bool:
    """True when `cidr` lies entirely inside one of `by`."""
    net = IPv4(cidr)
    return any(net.subnet_of(IPv4(b)) for b in by)


def overlaps(a: Cluster, b: Cluster) -> list[Overlap]:
    """Every pair of overlapping ranges between two clusters."""
    found = []
    for ca in routed_cidrs(a):
        for cb in routed_cidrs(b):
            if IPv4(ca).overlaps(IPv4(cb)):
                found.append(Overlap(a.name, ca, b.name, cb))
    return found


def find_overlaps(clusters: Sequence[Cluster]) -> list[Overlap]:
    """Overlaps between any two of `clusters`, in topology order."""
    return [o for a, b in combinations(clusters, 2) for o in overlaps(a, b)]


def refuse_overlaps(clusters: Sequence[Cluster]) -> None:
    """Raise TopologyError naming both clusters and ranges if any two overlap."""
    found = find_overlaps(clusters)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise TopologyError(f"refusing to peer: {found[0].message}{more}")


def between(topology: Topology, a: str, b: str) -> list[Overlap]:
    """The overlaps between two named clusters of the topology (none for one cluster)."""
    if a == b:
        return []
    return overlaps(topology.cluster(a), topology.cluster(b))


def overlap_reason(found: Sequence[Overlap]) -> str:
    """Why pod IPs between two clusters are not probed (seed 003):
    `c1 and c2 overlap: 10.120.0.0/16; reached through their internal load balancers instead`.
    """
    first = found[0]
    ranges = sorted({c for o in found for c in (o.a_cidr, o.b_cidr)})
    return (
        f"{first.a} and {first.b} overlap: {' and '.join(ranges)}; "
        "reached through their internal load balancers instead"
    )


def in_overlap(address: str, found: Sequence[Overlap]) -> bool:
    """True when `address` lies in a range both clusters claim (a pod or node IP of either:
    from one cluster it cannot name the other's). Names (DNS destinations) are not."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return any(ip in IPv4(o.a_cidr) and ip in IPv4(o.b_cidr) for o in found)


def pairs(clusters: Sequence[Cluster]) -> list[tuple[Cluster, Cluster]]:
    """Unordered pairs (a before b in topology order): one peering each."""
    return list(combinations(clusters, 2))


def directions(clusters: Sequence[Cluster]) -> list[tuple[Cluster, Cluster]]:
    """Ordered pairs (source, destination): routes and ports are checked both ways."""
    return list(permutations(clusters, 2))


def peers(topology: Topology, cluster: Cluster) -> tuple[Cluster, ...]:
    """Every other cluster on the same cloud."""
    return tuple(
        c for c in topology.clusters if c.name != cluster.name and c.cloud == cluster.cloud
    )


def pair_id(src: str, dst: str, port: int | None = None, cloud: str = "") -> str:
    """A readable, greppable id: `aws:central->east:9092`."""
    prefix = f"{cloud}:" if cloud else ""
    suffix = f":{port}" if port is not None else ""
    return f"{prefix}{src}->{dst}{suffix}"
