"""The lab's NetworkPolicy translation (enforcement, not the oracle): policies to iptables."""

from __future__ import annotations

from typing import Any

from provisioning.lab.apiserver.model import Obj
from provisioning.lab.controllers.network_policy import (
    JUMPS,
    ClusterView,
    PodInfo,
    pod_chain,
    selector_matches,
)
from provisioning.lab.controllers.network_policy import node_rules as node_tables
from provisioning.lab.network import NodePlan
from provisioning.lab.owned_chains import ChainOwner

NODE = NodePlan("east-node-0", "ns-node-0", "10.101.0.10", "10.101.1.0/24")
HTTP = (("http", "TCP", 8080), ("dns", "UDP", 53))
A = PodInfo("x", "a", {"app": "a"}, "10.101.1.2", "p1", NODE.name, HTTP)
B = PodInfo("x", "b", {"app": "b"}, "10.101.1.3", "p2", NODE.name, HTTP)
C = PodInfo("y", "c", {"app": "a"}, "10.101.2.2", "p3", "east-node-1", ())
NS = {
    "x": {"kubernetes.io/metadata.name": "x"},
    "y": {"kubernetes.io/metadata.name": "y", "t": "1"},
}


def node_rules(view: ClusterView, node: NodePlan, enforce: bool = True) -> str:
    """The `iptables-restore --noflush` input the controller writes into a fresh node."""
    return ChainOwner(("LAB-POLICY-",), JUMPS).render(node_tables(view, node, enforce), {})


def view(*specs: dict[str, Any], ns: str = "x") -> ClusterView:
    policies: list[Obj] = [{"metadata": {"namespace": ns, "name": f"p{i}"}, "spec": s}
                for i, s in enumerate(specs)]  # fmt: skip
    return ClusterView([A, B, C], NS, policies)


def test_unselected_pods_have_no_chain_and_replies_pass_first() -> None:
    assert pod_chain(view(), A, "Ingress") is None
    rules = node_rules(view(), NODE)
    assert "-A LAB-POLICY-FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT" in rules
    assert "LAB-POLICY-I-" not in rules and rules.startswith("*mangle\n")


def test_empty_ingress_denies_and_an_empty_rule_allows_all() -> None:
    deny = {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert pod_chain(view(deny), A, "Ingress") == ["-j DROP"]
    assert pod_chain(view(deny), A, "Egress") is None
    allow = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}
    assert pod_chain(view(deny, allow), A, "Ingress") == ["-j RETURN", "-j DROP"]


def test_namespace_and_pod_selector_in_one_peer_are_anded() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"t": "1"}},
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "In",
                                                  "values": ["a"]}]}}  # fmt: skip
    spec = {"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [peer]}]}  # fmt: skip
    assert pod_chain(view(spec), B, "Ingress") == [f"-s {C.ip}/32 -j RETURN", "-j DROP"]
    assert pod_chain(view(spec), A, "Ingress") is None


def test_named_ports_resolve_on_the_destination_with_their_protocol() -> None:
    spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"},
                                   {"port": "dns"}]}],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "b"}}}],
                        "ports": [{"port": "http"}]}]}  # fmt: skip
    assert pod_chain(view(spec), A, "Ingress") == [
        "-p tcp --dport 8080 -j RETURN",
        "-p udp --dport 53 -j RETURN",
        "-j DROP",
    ]
    assert pod_chain(view(spec), A, "Egress") == [
        f"-d {B.ip}/32 -p tcp --dport 8080 -j RETURN",
        "-j DROP",
    ]


def test_ip_block_except_and_port_ranges() -> None:
    spec = {"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/30", "except": ["10.0.0.1/32"]}}],
                        "ports": [{"protocol": "SCTP", "port": 53, "endPort": 80}]}]}  # fmt: skip
    chain = pod_chain(view(spec), A, "Egress")
    assert chain is not None and chain[-1] == "-j DROP"
    assert sorted(chain[:-1]) == [
        "-d 10.0.0.0/32 -p sctp --dport 53:80 -j RETURN",
        "-d 10.0.0.2/31 -p sctp --dport 53:80 -j RETURN",
    ]


def test_policies_of_other_namespaces_do_not_select_and_off_renders_nothing() -> None:
    spec = {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert pod_chain(view(spec, ns="y"), A, "Ingress") is None
    assert "LAB-POLICY-I-p1" in node_rules(view(spec), NODE)
    assert "p3" not in node_rules(view(spec), NODE)  # on the other node
    off = node_rules(view(spec), NODE, enforce=False)
    assert "LAB-POLICY-I" not in off and "conntrack" not in off


def test_selectors() -> None:
    assert selector_matches(None, {}) and selector_matches({}, {"a": "1"})
    expr = {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]},
                                 {"key": "b", "operator": "DoesNotExist"}]}  # fmt: skip
    assert selector_matches(expr, {"a": "2"}) and not selector_matches(expr, {"a": "1"})
    assert not selector_matches(expr, {"b": ""})
    assert not selector_matches({"matchExpressions": [{"key": "a", "operator": "Bad"}]}, {})
