"""The oracle reads a NetworkPolicy as the API server would have stored it (netconform/policy/
upstream.py): defaults filled in, refusals named; and it shares nothing with the lab's reading.

The expectations are written from the upstream functions cited in upstream.py's docstring, and
most of all the cases where a lenient reading goes wrong: `policyTypes: []` (defaulted, not
kept empty), empty vs absent lists, `protocol: tcp`, `port: "80"`, endPort's rules.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from netconform.policy import NamespaceInfo, Pod, PolicyError, PolicySet, labels
from netconform.policy.upstream import refusals, with_defaults
from tests.unit.test_policy_oracle import netpol

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("spec", "types"),
    [
        ({}, ("Ingress",)),
        ({"policyTypes": []}, ("Ingress",)),  # len()==0: defaulted, not "no direction"
        ({"policyTypes": None, "egress": [{}]}, ("Ingress", "Egress")),
        ({"policyTypes": [], "egress": [{}]}, ("Ingress", "Egress")),
        ({"egress": []}, ("Ingress",)),  # an empty egress list adds no Egress
        ({"egress": [{"to": [{"podSelector": {}}]}]}, ("Ingress", "Egress")),
        ({"policyTypes": ["Egress"], "ingress": [{}]}, ("Egress",)),  # ingress rules ignored
    ],
)
def test_policy_types_default_as_the_api_server(spec: dict[str, Any], types: tuple[str]) -> None:
    assert netpol(spec).types == types


def test_defaults_fill_protocol_and_selector_and_leave_the_input_alone() -> None:
    spec: dict[str, Any] = {"ingress": [{"ports": [{"port": 80}, {"protocol": "UDP"}]}]}
    out = with_defaults(spec)
    assert out["podSelector"] == {} and out["policyTypes"] == ["Ingress"]
    assert [p["protocol"] for p in out["ingress"][0]["ports"]] == ["TCP", "UDP"]
    assert "protocol" not in spec["ingress"][0]["ports"][0]  # a copy


@pytest.mark.parametrize(
    ("spec", "refusal"),
    [
        ({"ingress": [{"ports": [{"protocol": "tcp"}]}]}, "'tcp' is not TCP, UDP or SCTP"),
        ({"ingress": [{"ports": [{"port": "80"}]}]}, "'80' is not a valid port name"),
        ({"ingress": [{"ports": [{"port": "serve--80"}]}]}, "not a valid port name"),
        ({"ingress": [{"ports": [{"port": "-http"}]}]}, "not a valid port name"),
        ({"ingress": [{"ports": [{"port": "a-very-long-name"}]}]}, "not a valid port name"),
        ({"ingress": [{"ports": [{"port": 0}]}]}, "port: 0 is outside 1-65535"),
        ({"ingress": [{"ports": [{"port": 80, "endPort": 65536}]}]}, "endPort: 65536 is outside"),
        ({"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}, "endPort: 80 is below port 90"),
        ({"ingress": [{"ports": [{"endPort": 80}]}]}, "endPort: needs a port"),
        ({"egress": [{"to": [{}]}]}, "spec.egress[0].to[0]: must specify a peer"),
        ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "namespaceSelector": {}}]}]},
         "may not specify both ipBlock and another peer"),
        ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}]},
         "except[0]: 11.0.0.0/16 is not a strict subset of 10.0.0.0/8"),
        ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}]},
         "not a strict subset"),
        ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["fd00::/8"]}}]}]},
         "not a strict subset"),
        ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0"}}]}]}, "'10.0.0.0' is not a CIDR"),
        ({"policyTypes": ["Ingress", "Egress", "Egress"]}, "more than two policyTypes"),
        ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists",
                                                "values": ["x"]}]}}, "Exists takes no values"),
    ],
)  # fmt: skip
def test_what_the_api_server_refuses_the_oracle_refuses(spec: dict[str, Any], refusal: str) -> None:
    assert any(refusal in r for r in refusals(with_defaults(spec))), refusals(with_defaults(spec))
    with pytest.raises(PolicyError, match="the API server refuses it"):
        netpol(spec)


@pytest.mark.parametrize(
    "spec",
    [
        {"ingress": [{"ports": [{"port": 80, "endPort": 80}]}]},  # a range of one
        {"ingress": [{"ports": [{"port": "http", "protocol": "SCTP"}]}]},
        {"ingress": [{"ports": [{"port": "serve-80-tcp"}]}]},
        {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.5/8", "except": ["10.1.0.0/16"]}}]}]},
        {"ingress": [{"from": [], "ports": []}], "egress": []},
        {"ingress": [{"from": [{"podSelector": {}, "namespaceSelector": {}}]}]},
        {"policyTypes": ["Ingress", "Ingress"]},  # two, both known: accepted
    ],
)
def test_what_the_api_server_accepts_the_oracle_reads(spec: dict[str, Any]) -> None:
    assert refusals(with_defaults(spec)) == []
    netpol(spec)


A = Pod("east", "x", "a", "10.1.0.1", labels(app="a"))
B = Pod("east", "x", "b", "10.1.0.2", labels(app="b"))
SPACES = (NamespaceInfo("east", "x"),)


def test_empty_policy_types_isolates_as_ingress_not_as_nothing() -> None:
    """The shared wrong reading: `policyTypes: []` kept empty isolates nothing (all allowed);
    the API server stores [Ingress], so b's ingress is denied."""
    deny = netpol({"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": []})
    ps = PolicySet([deny], SPACES, [A, B])
    assert not ps.allowed(A, B, 80) and ps.allowed(B, A, 80)


def test_egress_rules_without_policy_types_isolate_egress_too() -> None:
    only_b = netpol({"podSelector": {"matchLabels": {"app": "a"}},
                     "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "b"}}}],
                                 "ports": [{"port": 80}]}]})  # fmt: skip
    ps = PolicySet([only_b], SPACES, [A, B])
    assert ps.allowed(A, B, 80) and not ps.allowed(A, B, 81)
    assert not ps.allowed(B, A, 80)  # a's ingress is isolated too (Ingress always implied)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_oracle_and_the_lab_read_policies_independently() -> None:
    """Two readings of upstream, not one with itself: the oracle imports nothing of the lab
    (nor of provisioning at all), and the lab's API server and enforcement import nothing of
    the oracle."""
    oracle = [
        *sorted((ROOT / "netconform/policy").glob("*.py")),
        ROOT / "netconform/policycheck.py",
    ]
    for path in oracle:
        assert not {m for m in _imports(path) if m.startswith("provisioning")}, path
    lab = [
        ROOT / "provisioning/lab/apiserver/kinds/netpol.py",
        ROOT / "provisioning/lab/apiserver/kinds/networking.py",
        ROOT / "provisioning/lab/controllers/network_policy.py",
    ]
    for path in lab:
        assert not {m for m in _imports(path) if m.startswith("netconform.policy")}, path
