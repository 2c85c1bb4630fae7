"""The chains the lab's network writes into its region routers and its world, once at build.

Like the controllers' (see `owned_chains`), they are chains of their own jumped to from the
built-in ones, written with `iptables-restore --noflush`; no table or built-in chain is ever
flushed, so the firewall's chain, the faults' single rules and anything typed by hand sit
beside them untouched.

- router, filter `LAB-PEERING` (from FORWARD): peering is not transitive (`router_filter`).
- router, nat `LAB-GATEWAY` (from POSTROUTING): the region's NAT gateway. What its pods and
  nodes send to the world leaves through the region's own uplink source-NATed to the
  router's world address, as a VPC's NAT gateway does, so it never depends on a peering
  (the replies come back the same way). In the overlap layout it also masquerades into the
  shared network (seed 003's gateways; the `gateway-snat` fault toggles that rule).
- world, filter `LAB-WORLD` (from FORWARD): the internet does not route private addresses
  between VPCs.
"""

from __future__ import annotations

import ipaddress

from provisioning.lab.network import LabPlan, RegionPlan
from provisioning.lab.owned_chains import ChainOwner, Jump, TableRules, Tables

PEERING = "LAB-PEERING"
GATEWAY = "LAB-GATEWAY"
WORLD = "LAB-WORLD"
WORLD_UPLINK = "world"
"""The router's interface to the world."""
SHARED_LEG = "shared"
"""The router's interface to the overlap layout's shared network."""
ROUTER_JUMPS = (Jump("filter", "FORWARD", PEERING), Jump("nat", "POSTROUTING", GATEWAY))
WORLD_JUMPS = (Jump("filter", "FORWARD", WORLD),)


def router_tables(region: RegionPlan, shared: bool = False) -> Tables:
    """The peering filter and the NAT gateway of one region router."""
    return {
        "filter": TableRules((PEERING,), tuple(f"-A {PEERING} {r}" for r in _peering(region))),
        "nat": TableRules((GATEWAY,), tuple(f"-A {GATEWAY} {r}" for r in _gateway(shared))),
    }


def _peering(region: RegionPlan) -> list[str]:
    """Peering is not transitive.

    AWS, GCP and Azure VPC peering carry only traffic that has one of the two peered VPCs at an
    end; a VPC never forwards between two others (nor from a peer to its own internet uplink).
    So the router forwards a packet only when its own VPC or its own LoadBalancer range is the
    source or the destination (`vpc_cidr` holds its nodes and the pod subnets routed via them;
    what they send to the world is source-NATed by the gateway after this filter). Anything
    else arriving here was routed through a third region: dropped silently, as a cloud drops
    it (a timeout, no ICMP).
    """
    own: tuple[str, ...] = (region.vpc_cidr, region.lb_cidr)
    if region.ilb_cidr and not ipaddress.IPv4Network(region.ilb_cidr).subnet_of(
        ipaddress.IPv4Network(own[0])
    ):
        own += (region.ilb_cidr,)  # internal LBs in a shared network (the overlap layout)
    return [*(f"-{end} {cidr} -j ACCEPT" for cidr in own for end in "sd"), "-j DROP"]


def _gateway(shared: bool) -> list[str]:
    """New connections leaving for the world (and, overlap layout, the shared network) take
    the router's address there; replies are un-NATed by conntrack."""
    legs = (SHARED_LEG, WORLD_UPLINK) if shared else (WORLD_UPLINK,)
    return [f"-o {leg} -j MASQUERADE" for leg in legs]


def router_filter(region: RegionPlan) -> str:
    """What the router's filter table gets (`iptables-restore --noflush` input)."""
    return ChainOwner((PEERING,), ()).render({"filter": router_tables(region)["filter"]}, {})


def program(plan: LabPlan) -> None:
    """Every router's chains and the world's, in full (a freshly built lab)."""
    routers = ChainOwner((PEERING, GATEWAY), ROUTER_JUMPS)
    for region in plan.regions:
        routers.write(region.router_netns, router_tables(region, plan.shared is not None), True)
    world = ChainOwner((WORLD,), WORLD_JUMPS)
    rules = (f"-A {WORLD} -s 10.0.0.0/8 -d 10.0.0.0/8 -j DROP",)
    world.write(plan.world_netns, {"filter": TableRules((WORLD,), rules)}, True)
