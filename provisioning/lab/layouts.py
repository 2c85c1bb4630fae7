"""Lab layouts: `default` (peered regions with distinct VPCs, see `network`) and `overlap`.

`overlap` is seed 003: two clusters, c1 and c2, whose networks are the SAME 10.120.0.0/16
(nodes, router and pods inside), each with its own router, NOT peered, joined only by a shared
network 10.210.200.0/24 holding each cluster's internal LoadBalancers:

    c1 pods -> c1 router --shared leg 10.210.200.2--+
                                                    shared netns (10.210.200.1 on every leg)
    c2 pods -> c2 router --shared leg 10.210.200.3--+   routes c1's ILB slice .64/26 to c1,
                                                        c2's .128/26 to c2

Each router masquerades what its pods send into the shared network (and to the world), as
seed 003's gateways NAT between each cluster and the shared network: the other cluster sees
the router's shared address, so its replies never aim at its own, overlapping, pod range.
The ILB addresses are carved per cluster out of the shared subnet (static routes, as a
per-cluster forwarding-rule range); the world reaches neither the shared network nor the pods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from netconform.errors import LabError
from provisioning.lab import firewall, network, ownership, router_chains
from provisioning.lab.network import LabPlan, NodePlan, RegionPlan, SharedNet

LAYOUTS = ("default", "overlap")
OVERLAP_CLUSTERS = ("c1", "c2")
OVERLAP_CIDR = "10.120.0.0/16"
SHARED_CIDR = "10.210.200.0/24"
SHARED_GATEWAY = "10.210.200.1"


def plan(
    prefix: str,
    regions: int,
    layout: str = "default",
    owner: str = ownership.NO_STATE_DIR,
    names: tuple[str, ...] = (),
    nodes: int = network.NODES_PER_REGION,
    vpcs: tuple[str, ...] = (),
    services: tuple[str, ...] = (),
) -> LabPlan:
    """The lab plan of a layout (`regions`, `names`, `nodes`, `vpcs` and `services` apply
    to `default` only), for the lab of the state directory `owner`. A build names its
    clusters (`names`, else central, east, west...), their VPCs and service ranges."""
    if layout == "default":
        names = names or network.region_names(regions)
        return network.plan_lab(prefix, names, owner, nodes, vpcs, services)
    if layout == "overlap":
        return dataclasses.replace(plan_overlap(prefix), owner=owner)
    raise LabError(f"unknown lab layout {layout!r} (layouts: {', '.join(LAYOUTS)})")


def plan_overlap(prefix: str) -> LabPlan:
    regions = tuple(_overlap_region(prefix, i, name) for i, name in enumerate(OVERLAP_CLUSTERS))
    legs = tuple((r.name, f"10.210.200.{2 + r.index}") for r in regions)
    shared = SharedNet(f"{prefix}-shared", SHARED_CIDR, SHARED_GATEWAY, legs)
    return LabPlan(prefix, regions, (), shared)


def _overlap_region(prefix: str, i: int, name: str) -> RegionPlan:
    nodes = tuple(
        NodePlan(
            f"{name}-node-{j}",
            f"{prefix}-{name}-n{j}",
            f"10.120.0.{10 + j}",
            f"10.120.{1 + j}.0/24",
        )
        for j in range(network.NODES_PER_REGION)
    )
    return RegionPlan(
        name=name,
        index=i,
        vpc_cidr=OVERLAP_CIDR,
        service_cidr=f"10.{200 + i}.0.0/16",
        router_netns=f"{prefix}-{name}-rtr",
        router_ip="10.120.0.1",
        world_link=(f"100.100.{i}.0", f"100.100.{i}.1"),
        lb_cidr=f"198.18.{i}.0/24",
        nodes=nodes,
        ilb_cidr=f"10.210.200.{64 * (i + 1)}/26",
    )


def build(lab: LabPlan) -> None:
    """The lab's network, and its shared network when the layout has one."""
    network.build(lab)
    try:
        if lab.shared is not None:
            _build_shared(lab, lab.shared)
        router_chains.program(lab)
    except BaseException:
        network.destroy(lab.prefix, lab.owner)  # never leave half a lab behind
        raise


def _build_shared(lab: LabPlan, shared: SharedNet) -> None:
    network.add_netns([shared.netns], lab.owner)
    lines = ["link set lo up"]
    for name, address in shared.legs:
        region = lab.region(name)
        dev = f"r{region.index}"
        network.veth(shared.netns, dev, region.router_netns, "shared")
        lines += [
            f"link set {dev} up",
            f"addr add {shared.gateway}/32 dev {dev}",
            f"route add {address}/32 dev {dev}",
            f"route add {region.ilb_cidr} via {address} dev {dev}",
        ]
        network.ip_batch(
            region.router_netns,
            [
                "link set shared up",
                f"addr add {address}/32 dev shared",
                f"route add {shared.gateway}/32 dev shared",
                f"route add {shared.cidr} via {shared.gateway} dev shared",
            ],
        )
    network.ip_batch(shared.netns, lines)
    network.sysctl(shared.netns, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0")


# The cluster's gateway NAT into the shared network (seed 003's gateways), a rule of the
# router's `LAB-GATEWAY` chain (see `router_chains`).
GATEWAY_SNAT = [router_chains.GATEWAY, "-o", router_chains.SHARED_LEG, "-j", "MASQUERADE"]


def gateway_snat(lab: LabPlan, cluster: str, state: str) -> Callable[[], None]:
    """`gateway-snat CLUSTER off|on`: whether CLUSTER's gateway source-NATs what its pods
    send into the shared network (seed 003). Off, the other cluster sees a client address
    inside its own copy of the overlapping range and routes the reply there: requests through
    its internal load balancers time out. The undo restores what was there before."""
    if lab.shared is None:
        raise LabError("gateway-snat needs the overlap layout (netconform-lab up --layout overlap)")
    if state not in ("on", "off"):
        raise LabError(f"gateway-snat: expected on or off, got {state!r}")
    netns = lab.region(cluster).router_netns
    was_on = firewall.has_rule(netns, "nat", GATEWAY_SNAT)
    set_snat(netns, state == "on", was_on)
    return lambda: set_snat(netns, was_on, state == "on")


def set_snat(netns: str, on: bool, now_on: bool) -> None:
    if on and not now_on:
        firewall.iptables(netns, "-A", *GATEWAY_SNAT, table="nat")
    elif now_on and not on:
        firewall.iptables(netns, "-D", *GATEWAY_SNAT, table="nat")
