"""Faults of Services' data path: a load balancer that stops answering, a status that keeps an
address nobody answers on, a node whose NodePorts are off.

Each is a rule in the raw table (kube-proxy and the load balancer controller restore only nat,
filter and routes, so a fault is not undone by the next Service event) and is removed exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from netconform.errors import LabError
from provisioning.lab import network
from provisioning.lab.apiserver.model import BY_KIND
from provisioning.lab.controllers.service_rules import lb_addresses
from provisioning.lab.network import LabPlan

if TYPE_CHECKING:
    from provisioning.lab.apiserver.server import LabApiServer

NODE_PORT_RANGE = "30000:32767"


def _raw(netns: str, op: str, rule: Sequence[str]) -> None:
    network.run(["ip", "netns", "exec", netns, "iptables", "-w", "-t", "raw", op, *rule])


def _drop_rules(targets: list[tuple[str, list[str]]]) -> Callable[[], None]:
    """Insert each (netns, rule); the undo deletes exactly those."""
    for netns, rule in targets:
        _raw(netns, "-I", rule)

    def undo() -> None:
        for netns, rule in targets:
            _raw(netns, "-D", rule)

    return undo


def lb_address(api: LabApiServer | None, plan: LabPlan, what: str) -> tuple[str, str]:
    """(cluster, address) of `CLUSTER/NS/SVC`'s load balancer; LabError when it has none."""
    parts = what.split("/")
    if len(parts) != 3 or not all(parts) or api is None:
        raise LabError(f"expected CLUSTER/NAMESPACE/SERVICE, got {what!r}")
    cluster, namespace, name = parts
    plan.region(cluster)  # names the known regions when wrong
    svc = api.stores[cluster].lookup(BY_KIND["Service"], namespace, name)
    if svc is None:
        raise LabError(f"no Service {namespace}/{name} in {cluster}")
    addresses = lb_addresses(svc)
    if not addresses:
        raise LabError(f"Service {namespace}/{name} in {cluster} has no load balancer address")
    return cluster, addresses[0]


def lb_down(api: LabApiServer | None, plan: LabPlan, what: str) -> Callable[[], None]:
    """The LB stops answering: its address is dropped at the router and on every node (so
    in-cluster clients, short-circuited by kube-proxy, get no answer either)."""
    cluster, address = lb_address(api, plan, what)
    region = plan.region(cluster)
    rule = ["PREROUTING", "-d", f"{address}/32", "-j", "DROP"]
    netns = [region.router_netns, *(n.netns for n in region.nodes)]
    return _drop_rules([(ns, rule) for ns in netns])


def lb_stale(api: LabApiServer | None, plan: LabPlan, what: str) -> Callable[[], None]:
    """The cloud holds no LB at the status address any more: the router drops it. In-cluster
    clients still get answers, as on a real cluster, from kube-proxy's rules for that status
    address; everyone outside the cluster times out."""
    cluster, address = lb_address(api, plan, what)
    rule = ["PREROUTING", "-d", f"{address}/32", "-j", "DROP"]
    return _drop_rules([(plan.region(cluster).router_netns, rule)])


def nodeport_off(plan: LabPlan, node_name: str) -> Callable[[], None]:
    """Nothing answers on NODE's NodePorts (TCP and UDP); its LB traffic is untouched."""
    for region in plan.regions:
        for node in region.nodes:
            if node.name == node_name:
                rules = [
                    ["PREROUTING", "-d", f"{node.ip}/32", "-p", proto, "--dport",
                     NODE_PORT_RANGE, "-j", "DROP"]
                    for proto in ("tcp", "udp")
                ]  # fmt: skip
                return _drop_rules([(node.netns, r) for r in rules])
    raise LabError(f"no node named {node_name!r} in the lab")
