"""NetworkPolicy enforcement: every node filters its pods' traffic, as Calico does per pod
interface (ingress on what is forwarded to a pod's veth, egress on what comes from it).

An implementation of its own, independent of the suite's oracle (`netconform/policy`), so the
suite compares two readings of the API reference and not one with itself.

It owns the `LAB-POLICY-*` chains of the node's `mangle` table and nothing else (kube-proxy
owns its `KUBE-*` chains of `nat` and `filter`): each sync rewrites those chains atomically
with `iptables-restore --noflush` and keeps the jump from FORWARD in place (see
`owned_chains`), so no other rule of the node is ever touched. An ACCEPT here only ends the
mangle table: kube-proxy's filter rules still apply afterwards.

Per node: `FORWARD -j LAB-POLICY-FORWARD`; replies (conntrack ESTABLISHED,RELATED) pass first;
then for every pod selected by an egress policy, `-i dev -j LAB-POLICY-E-dev`, and by an ingress
policy, `-o dev -j LAB-POLICY-I-dev`. A pod chain RETURNs when any rule of any selecting policy
allows the packet and DROPs otherwise; a pod selected by no policy of a direction has no chain.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from provisioning.lab.apiserver.model import Event, Obj
from provisioning.lab.controllers.base import Controller, LabContext
from provisioning.lab.network import NodePlan
from provisioning.lab.owned_chains import ChainOwner, Jump, TableRules, Tables

#: changes are applied within this (debounce, then one full re-render per node)
DEBOUNCE = 0.05
PROTOCOLS = ("TCP", "UDP", "SCTP")
FORWARD_CHAIN = "LAB-POLICY-FORWARD"
JUMPS = (Jump("mangle", "FORWARD", FORWARD_CHAIN),)


@dataclass(frozen=True)
class PodInfo:
    """One wired pod as enforcement sees it."""

    namespace: str
    name: str
    labels: dict[str, str]
    ip: str
    dev: str
    node: str
    ports: tuple[tuple[str, str, int], ...]
    """(name, protocol, containerPort) of its containers."""


@dataclass
class ClusterView:
    pods: list[PodInfo]
    ns_labels: dict[str, dict[str, str]]
    policies: list[Obj]


class NetworkPolicyController(Controller):
    name: ClassVar[str] = "network-policy"
    watches: ClassVar[frozenset[str]] = frozenset({"NetworkPolicy", "Pod", "Namespace"})

    def __init__(self) -> None:
        self._dirty: set[str] = set()
        self._lock = asyncio.Lock()
        self.owner = ChainOwner(("LAB-POLICY-",), JUMPS)

    async def start(self, lab: LabContext) -> None:
        await super().start(lab)
        loop = asyncio.get_running_loop()

        def resync(cluster: str) -> None:  # called from a fault's thread
            asyncio.run_coroutine_threadsafe(self._sync_now(cluster), loop).result(10)

        lab.resync_hooks.append(resync)

    async def on_event(self, cluster: str, event: Event) -> None:
        self._dirty.add(cluster)
        self.lab.tasks.spawn(self._sync())

    async def _sync(self) -> None:
        await asyncio.sleep(DEBOUNCE)
        async with self._lock:
            while self._dirty:
                await self._apply(self._dirty.pop())

    async def _sync_now(self, cluster: str) -> None:
        async with self._lock:
            self._dirty.discard(cluster)
            await self._apply(cluster)

    async def _apply(self, cluster: str) -> None:
        view = self._view(cluster)
        off = cluster in self.lab.policy_off
        for node in self.lab.region(cluster).nodes:
            tables = node_rules(view, node, enforce=not off)
            await asyncio.to_thread(self.owner.write, node.netns, tables)

    def _view(self, cluster: str) -> ClusterView:
        store = self.lab.store(cluster)
        pods = []
        for obj in store.list("Pod"):
            meta = obj["metadata"]
            state = self.lab.pods.get((cluster, meta["namespace"], meta["name"]))
            if state is None:
                continue
            ports = tuple(
                (str(p.get("name", "")), str(p.get("protocol", "TCP")), int(p["containerPort"]))
                for c in obj["spec"].get("containers", [])
                for p in c.get("ports") or []
            )
            pods.append(
                PodInfo(
                    meta["namespace"],
                    meta["name"],
                    dict(meta.get("labels") or {}),
                    state.ip,
                    state.dev,
                    state.node.name,
                    ports,
                )
            )
        ns_labels = {}
        for ns in store.list("Namespace"):
            name = ns["metadata"]["name"]
            labels = dict(ns["metadata"].get("labels") or {})
            labels.setdefault("kubernetes.io/metadata.name", name)
            ns_labels[name] = labels
        return ClusterView(pods, ns_labels, store.list("NetworkPolicy"))


# -- translation -------------------------------------------------------------------------------


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector; None or {} matches everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            ok = labels.get(key) in values
        elif op == "NotIn":
            ok = labels.get(key) not in values
        elif op == "Exists":
            ok = key in labels
        else:
            ok = op == "DoesNotExist" and key not in labels
        if not ok:
            return False
    return True


def _selects(policy: Obj, pod: PodInfo, direction: str) -> bool:
    spec = policy["spec"]
    return (
        policy["metadata"]["namespace"] == pod.namespace
        and direction in spec.get("policyTypes", ["Ingress"])
        and selector_matches(spec.get("podSelector"), pod.labels)
    )


def _block_nets(block: dict[str, Any]) -> list[str]:
    """An ipBlock as IPv4 CIDRs: cidr minus every except (the lab is IPv4 only)."""
    base = ipaddress.ip_network(block["cidr"], strict=False)
    if not isinstance(base, ipaddress.IPv4Network):
        return []
    nets = [base]
    for exc in block.get("except") or []:
        cut = ipaddress.ip_network(exc, strict=False)
        if not isinstance(cut, ipaddress.IPv4Network):
            continue
        rest: list[ipaddress.IPv4Network] = []
        for net in nets:
            if not net.overlaps(cut):
                rest.append(net)
            elif not cut.supernet_of(net):
                rest.extend(net.address_exclude(cut))
        nets = rest
    return [str(n) for n in nets]


def _peer_pods(view: ClusterView, policy_ns: str, peer: dict[str, Any]) -> list[PodInfo]:
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is None:
        namespaces = {policy_ns}
    else:
        namespaces = {n for n, labels in view.ns_labels.items() if selector_matches(ns_sel, labels)}
    return [
        p
        for p in view.pods
        if p.namespace in namespaces and selector_matches(peer.get("podSelector"), p.labels)
    ]


def _port_numbers(
    port: dict[str, Any], protocol: str, dst: Iterable[PodInfo]
) -> list[tuple[str | None, str]]:
    """(destination ip or None for any, `--dport` value) of one NetworkPolicyPort."""
    value = port.get("port")
    if value is None:
        return [(None, "")]
    if isinstance(value, int) or str(value).isdigit():
        end = port.get("endPort")
        return [(None, f"{value}:{end}" if end else str(value))]
    return [
        (p.ip, str(number))
        for p in dst
        for name, proto, number in p.ports
        if name == value and proto == protocol
    ]


def _rule_lines(
    view: ClusterView, policy: Obj, rule: dict[str, Any], pod: PodInfo, direction: str
) -> list[str]:
    """The allow lines (`... -j RETURN`) of one ingress or egress rule for `pod`."""
    ns = policy["metadata"]["namespace"]
    peer_key, addr = ("from", "-s") if direction == "Ingress" else ("to", "-d")
    peers = rule.get(peer_key) or []
    # peer matches: (CIDR, destination pods it covers for named ports), None = anything
    matches: list[tuple[str | None, list[PodInfo]]] = []
    if not peers:
        matches.append((None, view.pods))
    for peer in peers:
        if "ipBlock" in peer:
            nets = _block_nets(peer["ipBlock"])
            for net in nets:
                inside = [p for p in view.pods if _in(p.ip, net)]
                matches.append((net, inside))
        else:
            matches += [(f"{p.ip}/32", [p]) for p in _peer_pods(view, ns, peer)]
    ports = rule.get("ports") or [None]
    lines = []
    for cidr, peer_pods in matches:
        peer_match = f"{addr} {cidr} " if cidr else ""
        for port in ports:
            if port is None:
                lines.append(f"{peer_match}-j RETURN")
                continue
            protocol = str(port.get("protocol") or "TCP")
            dst = [pod] if direction == "Ingress" else peer_pods
            for dst_ip, dport in _port_numbers(port, protocol, dst):
                # a named port egress: the resolved destination pod (inside the peer) instead
                match = f"-d {dst_ip}/32 " if dst_ip and direction == "Egress" else peer_match
                proto = f"-p {protocol.lower()} " + (f"--dport {dport} " if dport else "")
                lines.append(f"{match}{proto}-j RETURN")
    return lines


def _in(ip: str, net: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(net)


def pod_chain(view: ClusterView, pod: PodInfo, direction: str) -> list[str] | None:
    """The allow lines of `pod` in one direction, then DROP; None when no policy selects it."""
    selecting = [p for p in view.policies if _selects(p, pod, direction)]
    if not selecting:
        return None
    key = "ingress" if direction == "Ingress" else "egress"
    lines = [
        line
        for policy in selecting
        for rule in policy["spec"].get(key) or []
        for line in _rule_lines(view, policy, rule, pod, direction)
    ]
    return [*dict.fromkeys(lines), "-j DROP"]


def node_rules(view: ClusterView, node: NodePlan, enforce: bool = True) -> Tables:
    """This controller's chains of one node's mangle table."""
    chains: dict[str, list[str]] = {}
    jumps = ["-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"]
    for pod in view.pods if enforce else []:
        if pod.node != node.name:
            continue
        for direction, flag, tag in (("Egress", "-i", "E"), ("Ingress", "-o", "I")):
            lines = pod_chain(view, pod, direction)
            if lines is None:
                continue
            chain = f"LAB-POLICY-{tag}-{pod.dev}"
            chains[chain] = lines
            jumps.append(f"{flag} {pod.dev} -j {chain}")
    rules = (
        *(f"-A {FORWARD_CHAIN} {j}" for j in jumps if enforce),
        *(f"-A {c} {line}" for c, lines in chains.items() for line in lines),
    )
    return {"mangle": TableRules((FORWARD_CHAIN, *chains), rules)}
