"""A generated NetworkPolicy corpus and a reference reading of it, for the oracle's unit test
and the lab's enforcement test.

The corpus follows the upstream policy-assistant generator (kubernetes-sigs/network-policy-api
cmd/policy-assistant/pkg/generator: constants.go, peerscases.go `makePeers`/`TwoPeersTestCases`,
portprotocolcases.go `networkPolicyPorts`/`TwoPortProtocolTestCases`, targetcases.go): namespaces
x, y, z with pods a, b, c serving TCP/UDP/SCTP 80 and 81 under the names `serve-80-tcp`...; a
base policy in x selecting pod a whose peers, ports, target or rule lists each case replaces.
It adds what the generator leaves out: every policyTypes form (absent, empty, each, both) with
every ingress/egress form (absent, empty, allow-all, a rule), absent next to empty lists, and
endPort ranges.

`reference_allowed` is NOT the oracle: a brute-force reading of the API reference (networking/v1
NetworkPolicySpec, NetworkPolicyPeer, NetworkPolicyPort field docs), its rules written as the
tables below, and the defaulting of kubernetes pkg/apis/networking/v1/defaults.go
`SetDefaults_NetworkPolicy` (an empty policyTypes list is defaulted as an absent one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NAMESPACES = ("x", "y", "z")
POD_NAMES = ("a", "b", "c")
PROTOCOLS = ("TCP", "UDP", "SCTP")
SERVED = (80, 81)
PROBES = tuple((proto, port) for proto in PROTOCOLS for port in SERVED)
"""(protocol, port) of every verdict: the served ports; the corpus also opens unserved ones."""

Spec = dict[str, Any]


@dataclass(frozen=True)
class CorpusPod:
    namespace: str
    """Logical name: x, y or z."""
    name: str
    ip: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def labels(self) -> dict[str, str]:
        return {"pod": self.name}

    @property
    def ports(self) -> list[tuple[str, str, int]]:
        """(name, protocol, number) of every container port."""
        return [(f"serve-{n}-{p.lower()}", p, n) for p in PROTOCOLS for n in SERVED]


@dataclass(frozen=True)
class World:
    """The pods and namespaces a corpus is written for: logical namespace names mapped to the
    real ones (a lab needs unique names), and each pod's IP."""

    pods: tuple[CorpusPod, ...]
    real: Mapping[str, str] = field(default_factory=lambda: {n: n for n in NAMESPACES})

    def ns_labels(self, logical: str) -> dict[str, str]:
        return {"ns": logical, "kubernetes.io/metadata.name": self.real[logical]}

    def pod(self, key: str) -> CorpusPod:
        return next(p for p in self.pods if p.key == key)


def fixed_world() -> World:
    """IPs for the unit test: x and y in 10.9.0.0/24 (y in its .16/28), z elsewhere."""
    base = {"x": "10.9.0.", "y": "10.9.0.1", "z": "10.9.1."}
    pods = [CorpusPod(n, p, base[n] + str(i + (7 if n == "y" else 1)))
            for n in NAMESPACES for i, p in enumerate(POD_NAMES)]  # fmt: skip
    return World(tuple(pods))


@dataclass(frozen=True)
class Case:
    name: str
    tags: frozenset[str]
    policies: tuple[Spec, ...]
    """Whole NetworkPolicy objects (metadata with the real namespace)."""


# -- the reference: the API reference's rules as tables ----------------------------------------


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """LabelSelector: matchLabels and matchExpressions ANDed; the empty selector matches all."""
    ops: dict[str, Callable[[str, list[str]], bool]] = {
        "In": lambda k, v: k in labels and labels[k] in v,
        "NotIn": lambda k, v: k not in labels or labels[k] not in v,
        "Exists": lambda k, v: k in labels,
        "DoesNotExist": lambda k, v: k not in labels,
    }
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and all(
        ops[e["operator"]](e["key"], list(e.get("values") or []))
        for e in selector.get("matchExpressions") or []
    )


# NetworkPolicyPeer: which pods a selector peer covers, by (namespaceSelector given,
# podSelector given). Absent namespaceSelector: the policy's own namespace; given: the
# namespaces it matches ({} = all). Absent podSelector: every pod there; given: those it matches.
PEER_TABLE: dict[tuple[bool, bool], Callable[[World, Spec, str, CorpusPod], bool]] = {
    (False, True): lambda w, peer, ns, pod: (
        pod.namespace == ns and _selector_matches(peer["podSelector"], pod.labels)
    ),
    (True, False): lambda w, peer, ns, pod: _selector_matches(
        peer["namespaceSelector"], w.ns_labels(pod.namespace)
    ),
    (True, True): lambda w, peer, ns, pod: (
        _selector_matches(peer["namespaceSelector"], w.ns_labels(pod.namespace))
        and _selector_matches(peer["podSelector"], pod.labels)
    ),
}


def _peer_covers(world: World, peer: Spec, policy_ns: str, pod: CorpusPod) -> bool:
    if "ipBlock" in peer:  # IPBlock: in cidr and in none of except
        addr = ipaddress.ip_address(pod.ip)
        block = peer["ipBlock"]
        return addr in ipaddress.ip_network(block["cidr"], strict=False) and not any(
            addr in ipaddress.ip_network(e, strict=False) for e in block.get("except") or []
        )
    form = ("namespaceSelector" in peer, "podSelector" in peer)
    return PEER_TABLE[form](world, peer, policy_ns, pod)


# NetworkPolicyPort: the protocol (default TCP) must be the traffic's; then by the port's form.
PORT_TABLE: dict[str, Callable[[Spec, int, CorpusPod], bool]] = {
    "absent": lambda rule_port, port, dst: True,  # every port of the protocol
    "number": lambda rule_port, port, dst: (
        int(rule_port["port"]) <= port <= int(rule_port.get("endPort") or rule_port["port"])
    ),
    "name": lambda rule_port, port, dst: any(  # a named port of the destination pod
        name == rule_port["port"] and proto == rule_port.get("protocol", "TCP") and number == port
        for name, proto, number in dst.ports
    ),
}


def _port_admits(rule_port: Spec, protocol: str, port: int, dst: CorpusPod) -> bool:
    if rule_port.get("protocol", "TCP") != protocol:
        return False
    value = rule_port.get("port")
    form = "absent" if value is None else "number" if isinstance(value, int) else "name"
    return PORT_TABLE[form](rule_port, port, dst)


def _policy_types(spec: Spec) -> list[str]:
    """defaults.go `SetDefaults_NetworkPolicy`: len(policyTypes) == 0 -> Ingress, + Egress
    when there are egress rules."""
    given = spec.get("policyTypes") or []
    return list(given) or ["Ingress", *(["Egress"] if spec.get("egress") else [])]


# NetworkPolicySpec.ingress/egress: (rule's peers list empty/absent, ports list empty/absent)
# -> the rule admits: every peer / every port; else any peer covers and any port admits.
def _rule_admits(
    world: World, rule: Spec, peers_key: str, ns: str, other: CorpusPod, dst: CorpusPod,
    protocol: str, port: int,
) -> bool:  # fmt: skip
    peers, ports = rule.get(peers_key) or [], rule.get("ports") or []
    peer_ok = not peers or any(_peer_covers(world, p, ns, other) for p in peers)
    port_ok = not ports or any(_port_admits(p, protocol, port, dst) for p in ports)
    return peer_ok and port_ok


def _direction_allows(
    world: World, policies: Sequence[Spec], direction: str, subject: CorpusPod,
    other: CorpusPod, dst: CorpusPod, protocol: str, port: int,
) -> bool:  # fmt: skip
    """A pod no policy of this direction selects is open; else some rule of some selecting
    policy admits (policies are a union)."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p for p in policies
        if _logical(world, p["metadata"]["namespace"]) == subject.namespace
        and direction in _policy_types(p["spec"])
        and _selector_matches(p["spec"].get("podSelector") or {}, subject.labels)
    ]  # fmt: skip
    if not selecting:
        return True
    return any(
        _rule_admits(world, rule, peers_key, subject.namespace, other, dst, protocol, port)
        for p in selecting
        for rule in p["spec"].get(key) or []
    )


def _logical(world: World, real: str) -> str:
    return next(k for k, v in world.real.items() if v == real)


def reference_allowed(
    world: World, policies: Sequence[Spec], src: CorpusPod, dst: CorpusPod, protocol: str,
    port: int,
) -> bool:  # fmt: skip
    """Egress of the source and ingress of the destination both allow."""
    return _direction_allows(
        world, policies, "Egress", src, dst, dst, protocol, port
    ) and _direction_allows(world, policies, "Ingress", dst, src, dst, protocol, port)


# -- the corpus ---------------------------------------------------------------------------------

POD_C = {"matchLabels": {"pod": "c"}}
NS_X = {"matchLabels": {"ns": "x"}}
POD_A = {"matchLabels": {"pod": "a"}}
POD_AB = {"matchExpressions": [{"key": "pod", "operator": "In", "values": ["a", "b"]}]}


def _peers(world: World) -> list[tuple[str, Spec]]:
    """peerscases.go `makePeers`: 8 selector combinations and 2 ipBlocks around pod y/b."""
    ip = world.pod("y/b").ip
    wide = str(ipaddress.ip_network(f"{ip}/24", strict=False))
    narrow = str(ipaddress.ip_network(f"{ip}/28", strict=False))
    return [
        ("empty pods + nil ns", {"podSelector": {}}),
        ("pods by label + nil ns", {"podSelector": POD_C}),
        ("nil pods + empty ns", {"namespaceSelector": {}}),
        ("empty pods + empty ns", {"podSelector": {}, "namespaceSelector": {}}),
        ("pods by label + empty ns", {"podSelector": POD_C, "namespaceSelector": {}}),
        ("nil pods + ns by label", {"namespaceSelector": NS_X}),
        ("empty pods + ns by label", {"podSelector": {}, "namespaceSelector": NS_X}),
        ("pods by label + ns by label", {"podSelector": POD_C, "namespaceSelector": NS_X}),
        ("simple ipblock", {"ipBlock": {"cidr": wide}}),
        ("ipblock with except", {"ipBlock": {"cidr": wide, "except": [narrow]}}),
    ]


def _single_ports() -> list[Spec]:
    """portprotocolcases.go `networkPolicyPorts` and its pathological cases, plus endPort."""
    ports: list[Spec] = []
    for proto in (None, *PROTOCOLS):
        for port in (None, 80, 81):
            entry: Spec = {}
            if proto:
                entry["protocol"] = proto
            if port:
                entry["port"] = port
            ports.append(entry)
    ports += [{"protocol": p, "port": f"serve-{n}-{p.lower()}"} for p in PROTOCOLS for n in SERVED]
    ports += [
        {"protocol": "TCP", "port": "serve-81-udp"},  # a named port of another protocol
        {"protocol": "TCP", "port": "serve-7981-udp"},  # a name nobody serves
        {"protocol": "TCP", "port": 7981},  # a number nobody serves
        {"port": 80, "endPort": 81},
        {"protocol": "TCP", "port": 79, "endPort": 80},
        {"protocol": "UDP", "port": 81, "endPort": 82},
        {"protocol": "SCTP", "port": 80, "endPort": 80},
        {"protocol": "TCP", "port": 1, "endPort": 65535},
    ]
    return ports


PORT_PAIRS: list[list[Spec]] = [  # portprotocolcases.go `TwoPortProtocolTestCases`
    [{}, {"port": 80}],
    [{}, {"port": "serve-80-tcp"}],
    [{}, {"protocol": "UDP"}],
    [{"port": 80}, {"port": 81}],
    [{"port": 80}, {"port": "serve-81-tcp"}],
    [{"port": 80}, {"protocol": "UDP", "port": "serve-81-udp"}],
    [{"protocol": "UDP", "port": 80}, {"protocol": "UDP", "port": "serve-81-udp"}],
]

BASE_PORTS: list[Spec] = [{"protocol": "TCP", "port": 80}]
BASE_PEERS: list[Spec] = [
    {
        "podSelector": {"matchLabels": {"pod": "b"}},
        "namespaceSelector": {"matchLabels": {"ns": "y"}},
    }
]
"""The base rule (each direction's): TCP 80 from (or to) pod b of namespace y."""


def _rule(ingress: bool, peers: list[Spec] | None, ports: list[Spec] | None) -> Spec:
    """A rule; None leaves the key out (absent), a list (maybe empty) is written."""
    rule: Spec = {}
    if peers is not None:
        rule["from" if ingress else "to"] = peers
    if ports is not None:
        rule["ports"] = ports
    return rule


def _policy(world: World, spec: Spec, name: str = "base", ns: str = "x") -> Spec:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": world.real[ns]}, "spec": spec}  # fmt: skip


def _directed(
    world: World, ingress: bool, peers: list[Spec] | None, ports: list[Spec] | None
) -> Spec:
    """The base policy of one direction with its rule's peers and ports replaced."""
    key = "ingress" if ingress else "egress"
    spec = {"podSelector": POD_A, "policyTypes": ["Ingress" if ingress else "Egress"],
            key: [_rule(ingress, peers, ports)]}  # fmt: skip
    return _policy(world, spec)


def _base_peers() -> list[Spec]:
    return [dict(p) for p in BASE_PEERS]


def _base_ports() -> list[Spec]:
    return [dict(p) for p in BASE_PORTS]


def _dirs() -> Iterator[tuple[bool, str]]:
    yield True, "ingress"
    yield False, "egress"


def generate(world: World) -> list[Case]:
    """Several hundred cases, each named and tagged (direction, peer, port forms)."""
    cases: list[Case] = []

    def add(name: str, tags: set[str], *policies: Spec) -> None:
        cases.append(Case(name, frozenset(tags), policies))

    # targetcases.go: the base policy's namespace and pod selector
    for ns in NAMESPACES:
        add(f"target namespace {ns}", {"target"}, _policy(world, {"podSelector": POD_A}, ns=ns))
    for label, sel in (("{}", {}), ("pod=a", POD_A), ("pod in (a,b)", POD_AB)):
        add(f"target pod selector {label}", {"target"}, _policy(world, {"podSelector": sel}))
    add("target pod selector absent", {"target"}, _policy(world, {}))

    # every policyTypes form with every ingress and egress form
    type_forms: list[tuple[str, list[str] | None]] = [
        ("absent", None), ("empty", []), ("Ingress", ["Ingress"]), ("Egress", ["Egress"]),
        ("both", ["Ingress", "Egress"]),
    ]  # fmt: skip
    for tname, types in type_forms:
        for iname, ingress in _rule_forms(True):
            for ename, egress in _rule_forms(False):
                spec: Spec = {"podSelector": POD_A}
                if types is not None:
                    spec["policyTypes"] = types
                if ingress is not None:
                    spec["ingress"] = ingress
                if egress is not None:
                    spec["egress"] = egress
                add(f"policyTypes {tname}, ingress {iname}, egress {ename}",
                    {"policy-types", f"types-{tname}"}, _policy(world, spec))  # fmt: skip

    peers = _peers(world)
    for inbound, dir_ in _dirs():
        # peerscases.go: zero, one and two peers (and the key absent)
        add(f"{dir_}: empty peers", {dir_, "peers"}, _directed(world, inbound, [], _base_ports()))
        add(f"{dir_}: absent peers", {dir_, "peers"},
            _directed(world, inbound, None, _base_ports()))  # fmt: skip
        for pname, peer in peers:
            add(f"{dir_}: {pname}", {dir_, "peers", pname},
                _directed(world, inbound, [peer], _base_ports()))  # fmt: skip
        for i, (n1, p1) in enumerate(peers):
            for n2, p2 in peers[i + 1 :]:
                add(f"{dir_}, 2-peer: {n1}, {n2}", {dir_, "peers", "2-peer", n1, n2},
                    _directed(world, inbound, [p1, p2], _base_ports()))  # fmt: skip
        # portprotocolcases.go: zero, one and two ports (and the key absent)
        add(f"{dir_}: empty ports", {dir_, "ports"}, _directed(world, inbound, _base_peers(), []))
        add(f"{dir_}: absent ports", {dir_, "ports"},
            _directed(world, inbound, _base_peers(), None))  # fmt: skip
        for port in _single_ports():
            add(f"{dir_}: port {port}", {dir_, "ports", *_port_tags(port)},
                _directed(world, inbound, _base_peers(), [port]))  # fmt: skip
        for pair in PORT_PAIRS:
            add(f"{dir_}: ports {pair}", {dir_, "ports", "2-port"},
                _directed(world, inbound, _base_peers(), pair))  # fmt: skip
        # every peer with a port of each form: named ports resolve per destination pod
        for pname, peer in peers:
            for port in ({"port": 81}, {"protocol": "UDP", "port": "serve-80-udp"},
                         {"port": 80, "endPort": 81}, {"protocol": "SCTP"}):  # fmt: skip
                add(f"{dir_}: {pname} on {port}", {dir_, "peers", "ports", pname,
                    *_port_tags(port)}, _directed(world, inbound, [peer], [port]))  # fmt: skip
    _two_policies(world, add)
    return cases


def _rule_forms(ingress: bool) -> list[tuple[str, list[Spec] | None]]:
    peers_key = "from" if ingress else "to"
    rule = {peers_key: _base_peers(), "ports": _base_ports()}
    return [("absent", None), ("empty", []), ("allow-all", [{}]), ("a rule", [rule])]


def _port_tags(port: Spec) -> set[str]:
    value = port.get("port")
    tags = {str(port.get("protocol", "default-protocol"))}
    tags.add("any-port" if value is None else "numbered-port" if isinstance(value, int) else
             "named-port")  # fmt: skip
    if "endPort" in port:
        tags.add("end-port")
    return tags


def _two_policies(world: World, add: Callable[..., None]) -> None:
    """Unions: policies selecting the same pod add up; different namespaces stay apart."""
    deny_x = _policy(world, {"podSelector": {}, "policyTypes": []}, "deny-x")
    allow_y = _policy(world, {"podSelector": POD_A, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}, "allow-y")  # fmt: skip
    deny_egress_z = _policy(world, {"podSelector": {}, "policyTypes": ["Egress"]}, "deny-z", "z")
    both_80 = [{"protocol": "UDP", "port": 80}, {"protocol": "TCP", "port": 80}]
    egress_dns = _policy(
        world, {"podSelector": {}, "egress": [{"ports": both_80}]}, "egress-80", "z"
    )
    add("union: deny x, allow y into x/a", {"union"}, deny_x, allow_y)
    add("union: deny egress of z, open 80", {"union"}, deny_egress_z, egress_dns)
    add("union: deny x and z", {"union"}, deny_x, deny_egress_z)
    add("union: all four", {"union"}, deny_x, allow_y, deny_egress_z, egress_dns)


REFUSED: list[tuple[str, Spec]] = [
    ("lowercase protocol", {"podSelector": {}, "ingress": [{"ports": [{"protocol": "tcp"}]}]}),
    ("a number as a name", {"podSelector": {}, "ingress": [{"ports": [{"port": "80"}]}]}),
    ("endPort below port",
     {"podSelector": {}, "ingress": [{"ports": [{"port": 81, "endPort": 80}]}]}),
    ("endPort with a name",
     {"podSelector": {}, "ingress": [{"ports": [{"port": "serve-80-tcp", "endPort": 81}]}]}),
    ("except outside cidr", {"podSelector": {}, "egress": [{"to": [
        {"ipBlock": {"cidr": "10.9.0.0/24", "except": ["10.9.1.0/28"]}}]}]}),
    ("ipBlock beside a selector", {"podSelector": {}, "egress": [{"to": [
        {"ipBlock": {"cidr": "10.9.0.0/24"}, "podSelector": {}}]}]}),
    ("an empty peer", {"podSelector": {}, "ingress": [{"from": [{}]}]}),
]  # fmt: skip
"""Policies the API server answers 422: the oracle must refuse them as well."""
