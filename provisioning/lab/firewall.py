"""The inter-region firewall on the region routers, and the link faults beside it.

The router's non-transitive peering filter is its own chain `LAB-PEERING` (`router_chains`,
written once at build). The firewall lives in its own chain, `LAB-FIREWALL`, rewritten alone
(`iptables-restore --noflush` flushes only the chains it declares) and jumped to from the top
of FORWARD, before the peering filter; faults add and delete single rules.

What the firewall passes between regions, as the seed's security groups / firewall rules /
NSGs between the pod subnets do: replies (conntrack ESTABLISHED,RELATED); the required TCP
ports, explicitly; nothing of the declared-closed TCP ports (dropped silently, as a cloud
drops: the client times out). Everything else (ICMP, with fragmentation-needed, the probe
port, UDP, the ports other suites use) is left to the peering filter: the lab's rules are the
seed's allow-list plus the declared deny-list, not a default deny.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence

from netconform.errors import LabError
from provisioning.lab import network
from provisioning.lab.network import LabPlan, RegionPlan, peer_dev

CHAIN = "LAB-FIREWALL"


def firewall_rules(region: RegionPlan, required: Sequence[int], closed: Sequence[int]) -> str:
    """`iptables-restore --noflush` input that rewrites only `CHAIN` of one router."""
    inbound = f"-i p+ -d {region.vpc_cidr} -p tcp -m tcp"
    lines = [
        "*filter",
        f":{CHAIN} - [0:0]",
        f"-A {CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
    ]
    lines += [f"-A {CHAIN} {inbound} --dport {port} -j DROP" for port in closed]
    lines += [f"-A {CHAIN} {inbound} --dport {port} -j RETURN" for port in required]
    return "\n".join([*lines, "COMMIT", ""])


def program(plan: LabPlan, required: Sequence[int], closed: Sequence[int]) -> None:
    """Write every router's firewall chain and make FORWARD jump to it first (once)."""
    overlap = set(required) & set(closed)
    if overlap:
        raise LabError(f"ports both required and closed: {sorted(overlap)}")
    for region in plan.regions:
        ns = region.router_netns
        network.iptables_restore(ns, firewall_rules(region, required, closed), table_only=True)
        if not _has(ns, "FORWARD", ["-j", CHAIN]):
            iptables(ns, "-I", "FORWARD", "1", "-j", CHAIN)


def iptables(netns: str, *args: str, table: str = "filter") -> None:
    network.run(["ip", "netns", "exec", netns, "iptables", "-w", "-t", table, *args])


def has_rule(netns: str, table: str, spec: Sequence[str]) -> bool:
    """Whether `spec` (a chain and its match, as `-A` takes them) is in `table`."""
    return _has(netns, spec[0], spec[1:], table)


def _has(netns: str, chain: str, spec: Sequence[str], table: str = "filter") -> bool:
    argv = ["ip", "netns", "exec", netns, "iptables", "-w", "-t", table, "-C", chain, *spec]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


Undo = Callable[[], None]


def insert_rules(rules: Sequence[tuple[str, str, str, list[str]]]) -> Undo:
    """Insert (netns, table, chain, spec) rules at the top; the undo deletes exactly them."""
    for netns, table, chain, spec in rules:
        iptables(netns, "-I", chain, "1", *spec, table=table)

    def undo() -> None:
        for netns, table, chain, spec in reversed(rules):
            iptables(netns, "-D", chain, *spec, table=table)

    return undo


def _ends(plan: LabPlan, a: str, b: str) -> tuple[RegionPlan, RegionPlan]:
    plan.peering(a, b)  # LabError unless A and B are two peered regions
    return plan.region(a), plan.region(b)


def close_port(plan: LabPlan, a: str, b: str, port: int) -> Undo:
    """TCP `port` dropped between the pod subnets of A and B, both ways (a rule removed)."""
    ra, rb = _ends(plan, a, b)
    rules = [
        (dst.router_netns, "filter", CHAIN,
         ["-s", src.vpc_cidr, "-d", dst.vpc_cidr, "-p", "tcp", "-m", "tcp",
          "--dport", str(port), "-j", "DROP"])
        for src, dst in ((ra, rb), (rb, ra))
    ]  # fmt: skip
    return insert_rules(rules)


def loss(plan: LabPlan, a: str, b: str, percent: float) -> Undo:
    """Drop `percent` of what A's router sends over its peering with B (iptables statistic):
    a round trip between A and B, either way, crosses that link once."""
    if not 0 < percent <= 100:
        raise LabError(f"loss percent must be in (0, 100], got {percent:g}")
    ra, rb = _ends(plan, a, b)
    spec = ["-o", peer_dev(rb), "-m", "statistic", "--mode", "random",
            "--probability", f"{percent / 100:.4f}", "-j", "DROP"]  # fmt: skip
    return insert_rules([(ra.router_netns, "filter", "FORWARD", spec)])


def icmp_drop(plan: LabPlan, a: str, b: str) -> Undo:
    """Every ICMP packet between the pod subnets of A and B dropped (TCP still passes)."""
    ra, rb = _ends(plan, a, b)
    rules = [
        (ra.router_netns, "filter", "FORWARD",
         ["-s", src.vpc_cidr, "-d", dst.vpc_cidr, "-p", "icmp", "-j", "DROP"])
        for src, dst in ((ra, rb), (rb, ra))
    ]  # fmt: skip
    return insert_rules(rules)


def snat(plan: LabPlan, a: str, b: str) -> Undo:
    """A's router masquerades its pods' traffic to B behind its peering address."""
    ra, rb = _ends(plan, a, b)
    spec = ["-s", ra.vpc_cidr, "-d", rb.vpc_cidr, "-o", peer_dev(rb), "-j", "MASQUERADE"]
    return insert_rules([(ra.router_netns, "nat", "POSTROUTING", spec)])


#: fragmentation-needed is generated by the router whose link is too small: drop it where it
#: is sent (OUTPUT), not only where it is forwarded (FACTS.md)
_FRAG_NEEDED = ["-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"]


def mtu(plan: LabPlan, a: str, b: str, size: int) -> Undo:
    """The peering link A<->B gets MTU `size` and its routers never say fragmentation-needed:
    an MTU black hole between A and B."""
    if not 576 <= size < 1500:
        raise LabError(f"mtu must be between 576 and 1499 bytes, got {size}")
    ra, rb = _ends(plan, a, b)
    links = ((ra, peer_dev(rb)), (rb, peer_dev(ra)))
    undo_rules = insert_rules(
        [(r.router_netns, "filter", chain, _FRAG_NEEDED) for r, _ in links
         for chain in ("OUTPUT", "FORWARD")]
    )  # fmt: skip
    for region, dev in links:
        network.ip_batch(region.router_netns, [f"link set {dev} mtu {size}"])

    def undo() -> None:
        for region, dev in links:
            network.ip_batch(region.router_netns, [f"link set {dev} mtu 1500"])
        undo_rules()

    return undo
