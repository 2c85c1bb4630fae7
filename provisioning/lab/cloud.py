"""The lab as a cloud for the audits: the same `Snapshot` AWS, GCP and Azure give, read from
the lab's region routers (read-only).

A region router is the lab's VPC: its peer links are the peerings (`west<->east`, active when
the link is up on that side; `cut-peering` takes the link down and leaves blackhole routes,
as a deleted AWS peering leaves its routes as blackholes), its main routing table is the
VPC's route table (a route's target is the peering whose link it leaves by; a blackhole to a
peer's VPC keeps naming that peer's peering, as AWS does; traffic to a peer the router
source-NATs reads as a route to a NAT gateway), and its iptables FORWARD chain, with every
chain it jumps to inlined where the jump is (the firewall's `LAB-FIREWALL`, the peering
filter's `LAB-PEERING`), is the firewall in front of the VPC (rules in that order, the chain's
policy last). The lab
needs no credentials; it must be running (`netconform-lab up`).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TextIO

from netconform.cidr import routed_cidrs
from netconform.cloudaudit import (
    ALL_PORTS,
    PeeringView,
    PortRange,
    Route,
    RouteTable,
    Rule,
    Snapshot,
)
from netconform.errors import LabError
from netconform.topology import Topology
from provisioning.cloud import ApplyReport, Change
from provisioning.lab import network
from provisioning.lab.control import DEFAULT_STATE_DIR, LabPaths, read_state
from provisioning.lab.network import LabPlan, RegionPlan, peer_dev, plan_lab
from provisioning.lab.saved_rules import SavedRule, SavedTable

ANY = "0.0.0.0/0"


class LabProvider:
    """Reads the running lab named by the topology (its kubeconfig sits in the state dir)."""

    cloud: ClassVar[str] = "lab"

    def __init__(self, topology: Topology) -> None:
        self.clusters = tuple(c for c in topology.clusters if c.cloud == "lab")
        self.state_dir = (
            topology.kubeconfig.parent if topology.kubeconfig is not None else DEFAULT_STATE_DIR
        )

    def plan(self) -> list[Change]:
        """Nothing to plan: the lab builds its own peerings, routes and rules."""
        return []

    def apply(self, plan: Sequence[Change], out: TextIO | None = None) -> ApplyReport:
        """Nothing to apply (see `plan`)."""
        return ApplyReport()

    def lab_plan(self) -> LabPlan:
        """The plan of the running lab, from its state file."""
        state = read_state(LabPaths(Path(self.state_dir)))
        if state is None:
            where = self.state_dir
            raise LabError(f"lab: no lab running in {where} (start one: netconform-lab up)")
        plan = plan_lab(str(state["prefix"]), [str(r) for r in state["regions"]])
        known = {r.name for r in plan.regions}
        missing = [c.name for c in self.clusters if c.name not in known]
        if missing:
            raise LabError(f"lab: no region {', '.join(missing)} in the running lab")
        return plan

    def snapshot(self) -> Snapshot:
        """Peerings, routing tables and FORWARD rules of every audited region's router."""
        plan = self.lab_plan()
        names = [c.name for c in self.clusters]
        regions = [plan.region(n) for n in names]
        peerings, tables, rules = [], [], []
        for region in regions:
            links = _links(region)
            peerings += [
                _view(plan, region, far, links) for far in regions if far.name != region.name
            ]
            tables.append(_route_table(plan, region))
            rules += _rules(region)
        return Snapshot(
            cloud="lab",
            clusters=self.clusters,
            peerings=tuple(peerings),
            route_tables=tuple(tables),
            rules=tuple(rules),
            firewall_labels={n: f"FORWARD chain of router {n}" for n in names},
            rule_sources={c.name: c.pod_cidrs for c in self.clusters},
            route_destinations={c.name: routed_cidrs(c) for c in self.clusters},
        )


def peering_id(plan: LabPlan, a: str, b: str) -> str:
    """`central<->east`, in the plan's order."""
    link = plan.peering(a, b)
    return f"{link.a}<->{link.b}"


def _json(argv: list[str]) -> Any:
    return json.loads(network.run(argv) or "[]")


def _links(region: RegionPlan) -> dict[str, str]:
    """Interface name -> operational state in the router."""
    rows = _json(["ip", "-n", region.router_netns, "-j", "link", "show"])
    return {str(r["ifname"]): str(r.get("operstate", "UNKNOWN")) for r in rows}


def _view(plan: LabPlan, near: RegionPlan, far: RegionPlan, links: dict[str, str]) -> PeeringView:
    pid = peering_id(plan, near.name, far.name)
    dev = peer_dev(far)
    state = links.get(dev, "absent")
    label = f"peering {pid} (router {near.name} link {dev})"
    return PeeringView(near.name, far.name, pid, label, state.lower(), state == "UP")


def _route_table(plan: LabPlan, region: RegionPlan) -> RouteTable:
    by_dev = {peer_dev(r): r for r in plan.regions if r.name != region.name}
    peer_by_vpc = {r.vpc_cidr: r for r in plan.regions if r.name != region.name}
    routes = []
    for row in _json(["ip", "-n", region.router_netns, "-j", "route", "show"]):
        dst = str(row.get("dst", ""))
        if dst == "default":
            dst = ANY
        if "/" not in dst:
            dst = f"{dst}/32"
        if row.get("type") == "blackhole":
            far = peer_by_vpc.get(dst)
            target = peering_id(plan, region.name, far.name) if far else "blackhole"
            routes.append(Route(dst, target, active=False))
            continue
        far = by_dev.get(str(row.get("dev", "")))
        target = peering_id(plan, region.name, far.name) if far else f"dev {row.get('dev')}"
        routes.append(Route(dst, target))
    # a source NAT to a peer wins over the route it rides on (the first of equal prefixes)
    routes = [*_nat_routes(plan, region), *routes]
    return RouteTable(region.name, f"routing table of router {region.name}", tuple(routes))


def _saved(region: RegionPlan, table: str) -> SavedTable:
    save = ["ip", "netns", "exec", region.router_netns, "iptables-save", "-t", table]
    return SavedTable.parse(network.run(save))


def _rules(region: RegionPlan) -> list[Rule]:
    """The rules TCP traffic into the region's VPC meets in FORWARD, in order: the faults'
    rules in FORWARD itself, the firewall's `LAB-FIREWALL`, the peering filter's
    `LAB-PEERING` (and any chain typed by hand), each where FORWARD jumps to it."""
    table = _saved(region, "filter")
    rules: list[Rule] = []
    for saved in table.walk("FORWARD"):
        rule = _rule(region, saved, len(rules) + 1)
        if rule is not None:
            rules.append(rule)
    policy = table.policies.get("FORWARD", "ACCEPT")
    end = len(rules) + 1
    rules.append(Rule(region.name, f"FORWARD policy {policy}", (ANY,), ALL_PORTS,
                      policy == "ACCEPT", end))  # fmt: skip
    return rules


def _rule(region: RegionPlan, saved: SavedRule, priority: int) -> Rule | None:
    """A rule as the audit sees it, or None when it cannot match TCP into the VPC.

    Only plain matches are understood (-s -d -p tcp --dport -i -o); a rule with any other
    match (conntrack state, marks...) is left out, since a `Rule` cannot express it."""
    opts = saved.matches()
    if opts is None or opts.get("-p", "tcp") not in ("tcp", "6", "all"):
        return None
    vpc = ipaddress.IPv4Network(region.vpc_cidr)
    if "-d" in opts and not vpc.overlaps(ipaddress.IPv4Network(opts["-d"])):
        return None
    ports = ALL_PORTS
    if "--dport" in opts:
        first, _, last = opts["--dport"].partition(":")
        ports = (PortRange(int(first), int(last or first)),)
    if saved.target not in ("ACCEPT", "DROP", "REJECT"):
        return None
    allow = saved.target == "ACCEPT"
    return Rule(region.name, saved.describe(), (opts.get("-s", ANY),), ports, allow, priority)


def _nat_routes(plan: LabPlan, region: RegionPlan) -> list[Route]:
    """Traffic to a peer that the router source-NATs (nat POSTROUTING and the chains it jumps
    to), as a route to a NAT gateway: the peer no longer sees the pods' own addresses."""
    by_dev = {peer_dev(r): r for r in plan.regions if r.name != region.name}
    routes = []
    for saved in _saved(region, "nat").walk("POSTROUTING"):
        opts = saved.matches()
        if opts is None or saved.target not in ("MASQUERADE", "SNAT"):
            continue
        far = by_dev.get(opts.get("-o", ""))
        destination = opts.get("-d") or (far.vpc_cidr if far is not None else "")
        if destination:
            routes.append(Route(destination, f"source NAT by nat {saved.describe()}"))
    return routes
