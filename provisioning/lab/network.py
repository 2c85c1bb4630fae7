"""The lab's network: regions as routed VPCs inside Linux network namespaces.

Per region (index i, VPC 10.(100+i).0.0/16, like seed 000's non-overlapping VPCs):

    pod netns --veth--> node netns --bridge--> router netns --veth--> peer routers
      10.(100+i).(1+j).k      10.(100+i).0.(10+j)   10.(100+i).0.1          (one link per pair)
                                                        |
                                                  world netns (the outside, LoadBalancer space)

Pods get their address from their node's slice of the VPC (VPC CNI style) and route through
the node (Calico-style /32 routes with proxy ARP). Every name starts with the lab's prefix and every
namespace is marked as its lab's (`ownership`), so `destroy` finds all of it again and nothing
else; nothing is created in the root namespace.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from netconform.errors import LabError, MissingToolError
from provisioning.lab import ownership

REGION_NAMES = (
    "central",
    "east",
    "west",
    "north",
    "south",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
)
MAX_REGIONS = 50
NODES_PER_REGION = 2
#: Nodes a region may have (one zone each, `a` to `h`).
MAX_NODES = 8
#: Link-local next hop every pod routes through; the node answers ARP for it.
POD_GATEWAY = "169.254.1.1"
REQUIRED_TOOLS = (
    "ip", "iptables", "iptables-restore", "sysctl", "unshare", "nsenter", "setpriv",
)  # fmt: skip


@dataclass(frozen=True)
class NodePlan:
    """One node: a network namespace that routes for the pods on it."""

    name: str
    """Kubernetes node name (`east-node-0`)."""
    netns: str
    """Network namespace name."""
    ip: str
    """Node address on the region bridge."""
    pod_cidr: str
    """The slice of the VPC its pods take addresses from."""


@dataclass(frozen=True)
class RegionPlan:
    """One region: a VPC with a router and its nodes."""

    name: str
    index: int
    vpc_cidr: str
    service_cidr: str
    router_netns: str
    router_ip: str
    world_link: tuple[str, str]
    """(world side, router side) addresses of the region's uplink."""
    lb_cidr: str
    """LoadBalancer addresses of this region, reachable from the world."""
    nodes: tuple[NodePlan, ...]
    ilb_cidr: str = ""
    """Internal LoadBalancer addresses: the VPC's last /24 unless a layout puts them in a
    shared network (see `layouts`)."""


@dataclass(frozen=True)
class Peering:
    """A point-to-point link between two region routers (a VPC peering)."""

    a: str
    b: str
    a_ip: str
    b_ip: str


@dataclass(frozen=True)
class SharedNet:
    """A network joined to some regions' routers only, holding their internal LoadBalancers
    (seed 003's `shared` subnet); the routers NAT their regions' traffic into it."""

    netns: str
    cidr: str
    gateway: str
    """The shared network's own address on every leg (what the routers route through)."""
    legs: tuple[tuple[str, str], ...]
    """(region, the region router's address in the shared network)."""


@dataclass(frozen=True)
class LabPlan:
    """All addresses and names of one lab; derived, never stored by hand."""

    prefix: str
    regions: tuple[RegionPlan, ...]
    peerings: tuple[Peering, ...]
    shared: SharedNet | None = None
    owner: str = ownership.NO_STATE_DIR
    """The state directory of the lab (see `ownership`): what it makes is marked as its."""

    @property
    def world_netns(self) -> str:
        return f"{self.prefix}-world"

    def region(self, name: str) -> RegionPlan:
        for region in self.regions:
            if region.name == name:
                return region
        known = ", ".join(r.name for r in self.regions)
        raise LabError(f"no region {name!r} in the lab (regions: {known})")

    def peering(self, a: str, b: str) -> Peering:
        for peering in self.peerings:
            if {peering.a, peering.b} == {a, b}:
                return peering
        raise LabError(f"no peering between {a!r} and {b!r}")


def region_names(count: int) -> tuple[str, ...]:
    """central, east, west, ... then r10, r11 ... for large labs."""
    if not 1 <= count <= MAX_REGIONS:
        raise LabError(f"--regions must be between 1 and {MAX_REGIONS}, got {count}")
    extra = tuple(f"r{i + 1}" for i in range(len(REGION_NAMES), count))
    return (REGION_NAMES + extra)[:count]


def plan_lab(
    prefix: str,
    names: Sequence[str],
    owner: str = ownership.NO_STATE_DIR,
    nodes: int = NODES_PER_REGION,
    vpcs: Sequence[str] = (),
    services: Sequence[str] = (),
) -> LabPlan:
    """Addresses for a lab of the given regions (`nodes` nodes each), made by the lab of
    `owner`. `vpcs`, `services` (a build's): each region's VPC (a /16 in 10.0.0.0/8) and
    service range instead of 10.(100+i).0.0/16 and 10.(200+i).0.0/16."""
    if not 1 <= nodes <= MAX_NODES:
        raise LabError(f"nodes per region must be between 1 and {MAX_NODES}, got {nodes}")
    regions = tuple(
        _plan_region(
            prefix,
            i,
            name,
            nodes,
            vpc_octet(vpcs[i]) if vpcs else 100 + i,
            services[i] if services else "",
        )
        for i, name in enumerate(names)
    )
    peerings = []
    link = 0
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            base = ipaddress.IPv4Address("100.64.0.0") + 2 * link
            peerings.append(Peering(a, b, str(base), str(base + 1)))
            link += 1
    return LabPlan(prefix, regions, tuple(peerings), owner=owner)


def default_service_cidr(i: int) -> str:
    """The service range of region `i` unless a build names one."""
    return f"10.{200 + i}.0.0/16" if i < 55 else f"172.{16 + i - 55}.0.0/16"


def vpc_octet(cidr: str) -> int:
    """X of a lab VPC 10.X.0.0/16; LabError for any other range (the lab's addresses are
    carved from the second octet, and its world drops 10.0.0.0/8 between VPCs)."""
    net = ipaddress.IPv4Network(cidr)
    if net.prefixlen != 16 or not net.subnet_of(ipaddress.IPv4Network("10.0.0.0/8")):
        raise LabError(f"a lab VPC is a /16 inside 10.0.0.0/8 (10.X.0.0/16), not {cidr}")
    return int(str(net.network_address).split(".")[1])


def _plan_region(
    prefix: str,
    i: int,
    name: str,
    count: int = NODES_PER_REGION,
    octet: int | None = None,
    service_cidr: str = "",
) -> RegionPlan:
    octet = 100 + i if octet is None else octet
    nodes = tuple(
        NodePlan(
            name=f"{name}-node-{j}",
            netns=f"{prefix}-{name}-n{j}",
            ip=f"10.{octet}.0.{10 + j}",
            pod_cidr=f"10.{octet}.{1 + j}.0/24",
        )
        for j in range(count)
    )
    return RegionPlan(
        name=name,
        index=i,
        ilb_cidr=f"10.{octet}.255.0/24",
        vpc_cidr=f"10.{octet}.0.0/16",
        service_cidr=service_cidr or default_service_cidr(i),
        router_netns=f"{prefix}-{name}-rtr",
        router_ip=f"10.{octet}.0.1",
        world_link=(f"100.100.{i}.0", f"100.100.{i}.1"),
        lb_cidr=f"198.18.{i}.0/24",
        nodes=nodes,
    )


def check_tools(tools: Iterable[str] = REQUIRED_TOOLS) -> None:
    """MissingToolError naming the first absent program and the package that has it."""
    packages = {
        "ip": "iproute2",
        "iptables": "iptables",
        "iptables-restore": "iptables",
        "sysctl": "procps",
        "unshare": "util-linux",
        "nsenter": "util-linux",
        "setpriv": "util-linux",
        "nginx": "nginx-light",
        "dnsmasq": "dnsmasq-base",
        "ping": "iputils-ping",
        "nc": "netcat-openbsd",
        "dig": "dnsutils",
    }
    for tool in tools:
        if shutil.which(tool) is None:
            package = packages.get(tool, tool)
            raise MissingToolError(
                f"required tool {tool!r} not found on PATH (install Debian package {package})"
            )


def run(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    """Run a network command; LabError with its stderr when it fails (and `check`)."""
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"{' '.join(argv[:6])}: {detail[-1] if detail else 'failed'}")
    return proc.stdout


def ip_batch(netns: str, lines: Sequence[str]) -> None:
    """Many `ip` commands in one process, inside one namespace."""
    if lines:
        run(["ip", "-n", netns, "-batch", "-"], stdin="\n".join(lines) + "\n")


def sysctl(netns: str, *settings: str) -> None:
    run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *settings])


def iptables_restore(netns: str, rules: str, table_only: bool = False) -> None:
    """Replace the tables in `rules` inside a namespace, atomically per table."""
    argv = ["ip", "netns", "exec", netns, "iptables-restore"]
    if table_only:
        argv.append("--noflush")
    run(argv, stdin=rules)


def add_netns(names: Sequence[str], owner: str | None = None) -> None:
    """Create namespaces; with `owner` (a lab's state dir), marked as that lab's first, so
    that even a lab killed halfway leaves nothing its sweep would not recognise."""
    if owner is not None:
        ownership.mark(tuple(names), owner)
    run(["ip", "-batch", "-"], stdin="".join(f"netns add {n}\n" for n in names))


def veth(ns_a: str, dev_a: str, ns_b: str, dev_b: str) -> None:
    """A veth pair created directly inside two namespaces (never in the root namespace)."""
    run(
        [
            "ip",
            "link",
            "add",
            dev_a,
            "netns",
            ns_a,
            "type",
            "veth",
            "peer",
            "name",
            dev_b,
            "netns",
            ns_b,
        ]
    )


def list_netns(prefix: str) -> list[str]:
    """Namespaces whose name starts with `prefix-`."""
    out = run(["ip", "netns", "list"])
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(f"{prefix}-")]


def build(plan: LabPlan) -> None:
    """Create namespaces, links, addresses and routes for the whole lab."""
    check_tools()
    check_free(plan.prefix, plan.owner)
    try:
        _build(plan)
    except BaseException:
        destroy(plan.prefix, plan.owner)  # never leave half a lab behind
        raise


def check_free(prefix: str, owner: str) -> None:
    """LabError saying whose they are when `prefix` is held by another live lab, or when
    namespaces named `prefix-*` exist."""
    held = ownership.read_claim(prefix)
    if held is not None and held.state_dir != owner and held.alive:
        raise LabError(ownership.taken_message(held, owner))
    leftovers = list_netns(prefix)
    if not leftovers:
        return
    own, others = ownership.split_by_owner(leftovers, owner)
    if others:
        raise LabError(
            f"namespaces named {prefix}-* exist that this lab did not make "
            f"({ownership.describe_others(prefix, others)}): remove them through their own "
            "lab ('netconform-lab --state-dir DIR down'), or choose another --prefix"
        )
    raise LabError(
        f"{len(own)} namespaces of this lab's earlier run are left (e.g. {own[0]}): "
        f"run 'netconform-lab --state-dir {owner or '<state dir>'} down' first"
    )


def _build(plan: LabPlan) -> None:
    namespaces = [plan.world_netns]
    for region in plan.regions:
        namespaces.append(region.router_netns)
        namespaces.extend(node.netns for node in region.nodes)
    add_netns(namespaces, plan.owner)
    world_lines = ["link set lo up"]
    for region in plan.regions:
        world_lines += _build_region(region, plan.world_netns)
    for peering in plan.peerings:
        _build_peering(plan, peering)
    ip_batch(plan.world_netns, world_lines)
    sysctl(plan.world_netns, "net.ipv4.ip_forward=1")
    # the routers' and the world's iptables chains: `router_chains.program` (layouts.build)


def _build_region(region: RegionPlan, world_netns: str) -> list[str]:
    """Router, bridge, nodes; returns the world's side of the uplink as ip commands."""
    rtr = region.router_netns
    veth(world_netns, f"r{region.index}", rtr, "world")
    rtr_lines = [
        "link set lo up",
        "link add br0 type bridge",
        "link set br0 up",
        f"addr add {region.router_ip}/24 dev br0",
        "link set world up",
        f"addr add {region.world_link[1]}/31 dev world",
        f"route add default via {region.world_link[0]} dev world",
    ]
    for j, node in enumerate(region.nodes):
        veth(rtr, f"n{j}", node.netns, "eth0")
        rtr_lines += [
            f"link set n{j} master br0",
            f"link set n{j} up",
            f"route add {node.pod_cidr} via {node.ip} dev br0",
        ]
        ip_batch(
            node.netns,
            [
                "link set lo up",
                "link set eth0 up",
                f"addr add {node.ip}/24 dev eth0",
                f"route add default via {region.router_ip} dev eth0",
            ],
        )
        sysctl(node.netns, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0")
    ip_batch(rtr, rtr_lines)
    sysctl(rtr, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0")
    return [
        f"link set r{region.index} up",
        f"addr add {region.world_link[0]}/31 dev r{region.index}",
        f"route add {region.lb_cidr} via {region.world_link[1]} dev r{region.index}",
    ]


def peer_dev(region: RegionPlan) -> str:
    """Name of the interface, in a peer router, that leads to `region`."""
    return f"p{region.index}"


def _build_peering(plan: LabPlan, peering: Peering) -> None:
    a, b = plan.region(peering.a), plan.region(peering.b)
    veth(a.router_netns, peer_dev(b), b.router_netns, peer_dev(a))
    for near, far, near_ip, far_ip in (
        (a, b, peering.a_ip, peering.b_ip),
        (b, a, peering.b_ip, peering.a_ip),
    ):
        ip_batch(
            near.router_netns,
            [
                f"link set {peer_dev(far)} up",
                f"addr add {near_ip}/31 dev {peer_dev(far)}",
                f"route add {far.vpc_cidr} via {far_ip} dev {peer_dev(far)}",
            ],
        )


def set_peering(plan: LabPlan, a: str, b: str, active: bool) -> None:
    """Cut (link down, blackhole both ways, as AWS shows a deleted peering's routes) or
    restore. The link state is what the lab's cloud audit reads as the peering's state."""
    peering = plan.peering(a, b)
    ra, rb = plan.region(peering.a), plan.region(peering.b)
    ends = ((ra, rb, peering.b_ip), (rb, ra, peering.a_ip))
    for near, far, _ in ends:  # both ends up before a route may use the link
        ip_batch(near.router_netns, [f"link set {peer_dev(far)} {'up' if active else 'down'}"])
    for near, far, far_ip in ends:
        if active:
            route = f"route replace {far.vpc_cidr} via {far_ip} dev {peer_dev(far)}"
        else:
            route = f"route replace blackhole {far.vpc_cidr}"
        ip_batch(near.router_netns, [route])


def set_transit(plan: LabPlan, src: str, dst: str, via: str | None) -> None:
    """Route `src`'s traffic for `dst`'s VPC through `via`'s peering (None: the direct one).

    The VIA router drops it (peering is not transitive, see `router_chains`), so this breaks
    exactly the pairs between SRC and DST: requests one way, replies the other.
    """
    if via is not None and len({src, dst, via}) < 3:
        raise LabError(f"transit needs three different regions, got {src} {dst} {via}")
    near, far = plan.region(src), plan.region(via or dst)
    link = plan.peering(src, far.name)
    far_ip = link.b_ip if link.b == far.name else link.a_ip
    route = f"route replace {plan.region(dst).vpc_cidr} via {far_ip} dev {peer_dev(far)}"
    ip_batch(near.router_netns, [route])


def destroy(prefix: str, owner: str) -> list[str]:
    """Delete the namespaces named `prefix-*` that `owner` made (their links go with them,
    what still runs in them is killed first); any other namespace is left alone."""
    names, _ = ownership.split_by_owner(list_netns(prefix), owner)
    for name in names:
        _kill_processes_in(name)
        etc = Path("/etc/netns") / name  # the pods' /etc/hosts (a lab killed outright leaves them)
        with contextlib.suppress(OSError):
            (etc / "hosts").unlink()
        with contextlib.suppress(OSError):
            etc.rmdir()
    if names:
        # -force: keep going past a namespace that vanished meanwhile
        run(
            ["ip", "-force", "-batch", "-"],
            stdin="".join(f"netns delete {n}\n" for n in names),
            check=False,
        )
    ownership.unmark(names)
    return names


def others(prefix: str, owner: str) -> dict[str | None, list[str]]:
    """Namespaces named `prefix-*` that `owner` did not make, by maker (None: unmarked)."""
    return ownership.split_by_owner(list_netns(prefix), owner)[1]


def _kill_processes_in(netns: str) -> None:
    """What a crashed daemon left running in one of its namespaces (nginx, dnsmasq, pods)."""
    for word in run(["ip", "netns", "pids", netns], check=False).split():
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(word), signal.SIGKILL)
