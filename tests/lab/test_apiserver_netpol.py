"""The lab API server's NetworkPolicy writes: upstream's defaults stored and returned by GET,
and upstream's validation answered as 422 Invalid naming the field (kinds/netpol.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from tests.lab.apiserver_kit import Lab, expect_error
from tests.lab.fields import model, need, unpreloaded


@pytest.fixture(scope="module")
def net(lab_api: Lab) -> client.NetworkingV1Api:
    return client.NetworkingV1Api(lab_api.api())


def create_and_get(net: client.NetworkingV1Api, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Create a policy, then GET it raw (absent and empty stay distinguishable)."""
    policy = model(client.V1NetworkPolicy, {"metadata": {"name": "p"}, "spec": spec})
    net.create_namespaced_network_policy(ns, policy)
    raw = unpreloaded(net.read_namespaced_network_policy("p", ns, _preload_content=False)).data
    stored = json.loads(raw)["spec"]
    net.delete_namespaced_network_policy("p", ns)
    assert isinstance(stored, dict)
    return stored


SELECTED = {"matchLabels": {"app": "a"}}

DEFAULTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("nothing: Ingress, every pod", {}, {"podSelector": {}, "policyTypes": ["Ingress"]}),
    (
        "policyTypes empty, no egress: Ingress (len()==0 is defaulted, not kept empty)",
        {"podSelector": SELECTED, "policyTypes": []},
        {"podSelector": SELECTED, "policyTypes": ["Ingress"]},
    ),
    (
        "policyTypes empty with egress rules: Ingress and Egress",
        {"podSelector": {}, "policyTypes": [], "egress": [{}]},
        {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{}]},
    ),
    (
        "egress rules, policyTypes absent: Ingress and Egress",
        {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]},
        {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "egress": [{"to": [{"podSelector": {}}]}],
        },
    ),
    (
        "an empty egress list adds no Egress, and is omitted as Go omits it",
        {"podSelector": {}, "egress": [], "ingress": []},
        {"podSelector": {}, "policyTypes": ["Ingress"]},
    ),
    (
        "given policyTypes are kept",
        {"podSelector": {}, "policyTypes": ["Egress"]},
        {"podSelector": {}, "policyTypes": ["Egress"]},
    ),
    (
        "a port's protocol defaults to TCP; UDP and SCTP kept; empty from/ports omitted",
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [],
                    "ports": [
                        {"port": 80},
                        {"protocol": "UDP", "port": 53},
                        {"protocol": "SCTP"},
                        {"port": "http"},
                    ],
                },
                {"ports": []},
            ],
        },
        {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "ports": [
                        {"protocol": "TCP", "port": 80},
                        {"protocol": "UDP", "port": 53},
                        {"protocol": "SCTP"},
                        {"protocol": "TCP", "port": "http"},
                    ]
                },
                {},
            ],
        },
    ),
    (
        "empty selectors in a peer stay (they select all), absent ones stay absent",
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {"podSelector": {}},
                        {"namespaceSelector": {}},
                        {"namespaceSelector": {"matchLabels": {}}, "podSelector": SELECTED},
                        {"ipBlock": {"cidr": "10.0.0.0/16", "except": []}},
                        {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]}},
                    ]
                }
            ],
        },
        {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {}},
                        {"namespaceSelector": {}},
                        {"namespaceSelector": {}, "podSelector": SELECTED},
                        {"ipBlock": {"cidr": "10.0.0.0/16"}},
                        {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]}},
                    ]
                }
            ],
        },
    ),
]


@pytest.mark.parametrize(("what", "spec", "stored"), DEFAULTS, ids=[d[0] for d in DEFAULTS])
def test_defaults_are_stored_and_returned(
    net: client.NetworkingV1Api, ns: str, what: str, spec: dict[str, Any], stored: dict[str, Any]
) -> None:
    assert create_and_get(net, ns, spec) == stored, what


def port(**fields: Any) -> dict[str, Any]:
    return {"podSelector": {}, "ingress": [{"ports": [fields]}]}


def peer(**fields: Any) -> dict[str, Any]:
    return {"podSelector": {}, "egress": [{"to": [fields]}]}


def expr(operator: str, values: list[str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": "app", "operator": operator}
    if values is not None:
        entry["values"] = values
    return {"podSelector": {"matchExpressions": [entry]}}


P0 = "spec.ingress[0].ports[0]"
T0 = "spec.egress[0].to[0]"
INVALID: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("lowercase protocol", port(protocol="tcp"), f"{P0}.protocol", "FieldValueNotSupported",
     'Unsupported value: "tcp": supported values: "TCP", "UDP", "SCTP"'),
    ("ICMP is no protocol", port(protocol="ICMP"), f"{P0}.protocol", "FieldValueNotSupported",
     '"ICMP"'),
    ("port 0", port(port=0), f"{P0}.port", "FieldValueInvalid", "between 1 and 65535"),
    ("port 65536", port(port=65536), f"{P0}.port", "FieldValueInvalid", "between 1 and 65535"),
    ("endPort below port", port(port=90, endPort=80), f"{P0}.endPort", "FieldValueInvalid",
     "Invalid value: 80: must be greater than or equal to `port`"),
    ("endPort with a named port", port(port="http", endPort=90), f"{P0}.endPort",
     "FieldValueInvalid", "may not be specified when `port` is non-numeric"),
    ("endPort without port", port(endPort=90), f"{P0}.endPort", "FieldValueInvalid",
     "may not be specified when `port` is not specified"),
    ("endPort 70000", port(port=80, endPort=70000), f"{P0}.endPort", "FieldValueInvalid",
     "between 1 and 65535"),
    ("a number as a string is a port name, and not a valid one", port(port="80"),
     f"{P0}.port", "FieldValueInvalid", "must contain at least one letter (a-z)"),
    ("port name of 16 characters", port(port="a" * 16), f"{P0}.port", "FieldValueInvalid",
     "no more than 15 characters"),
    ("port name in capitals", port(port="Http"), f"{P0}.port", "FieldValueInvalid",
     "alpha-numeric characters"),
    ("an empty peer", peer(), T0, "FieldValueRequired", "must specify a peer"),
    ("ipBlock beside a podSelector", peer(ipBlock={"cidr": "10.0.0.0/8"}, podSelector={}), T0,
     "FieldValueForbidden", "may not specify both ipBlock and another peer"),
    ("ipBlock beside a namespaceSelector",
     peer(ipBlock={"cidr": "10.0.0.0/8"}, namespaceSelector={}), T0, "FieldValueForbidden",
     "may not specify both ipBlock and another peer"),
    ("cidr not a CIDR", peer(ipBlock={"cidr": "10.0.0.0/33"}), f"{T0}.ipBlock.cidr",
     "FieldValueInvalid", "valid CIDR"),
    ("cidr empty", peer(ipBlock={"cidr": ""}), f"{T0}.ipBlock.cidr", "FieldValueRequired", ""),
    ("except outside cidr", peer(ipBlock={"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}),
     f"{T0}.ipBlock.except[0]", "FieldValueInvalid", "must be a strict subset of `cidr`"),
    ("except equal to cidr", peer(ipBlock={"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16"]}),
     f"{T0}.ipBlock.except[0]", "FieldValueInvalid", "must be a strict subset of `cidr`"),
    ("except of the other family",
     peer(ipBlock={"cidr": "10.0.0.0/16", "except": ["fd00::/64"]}),
     f"{T0}.ipBlock.except[0]", "FieldValueInvalid", "must be a strict subset of `cidr`"),
    ("three policyTypes", {"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Ingress"]},
     "spec.policyTypes", "FieldValueInvalid", "may not specify more than two policyTypes"),
    ("policyTypes in lowercase", {"podSelector": {}, "policyTypes": ["ingress"]},
     "spec.policyTypes[0]", "FieldValueNotSupported", '"Ingress", "Egress"'),
    ("In without values", expr("In", []), "spec.podSelector.matchExpressions[0].values",
     "FieldValueRequired", "must be specified when `operator` is 'In' or 'NotIn'"),
    ("Exists with values", expr("Exists", ["x"]),
     "spec.podSelector.matchExpressions[0].values", "FieldValueForbidden",
     "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
    ("an unknown operator", expr("Equals", ["x"]),
     "spec.podSelector.matchExpressions[0].operator", "FieldValueInvalid",
     "not a valid selector operator"),
    ("a bad label key", {"podSelector": {"matchLabels": {"-app": "x"}}},
     "spec.podSelector.matchLabels", "FieldValueInvalid", "name part must consist"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "spec", "field", "reason", "text"), INVALID,
                         ids=[i[0] for i in INVALID])  # fmt: skip
def test_invalid_policies_are_422_naming_the_field(
    net: client.NetworkingV1Api,
    ns: str,
    what: str,
    spec: dict[str, Any],
    field: str,
    reason: str,
    text: str,
) -> None:
    bad = model(client.V1NetworkPolicy, {"metadata": {"name": "bad"}, "spec": spec})
    body = expect_error(422, "Invalid", lambda: net.create_namespaced_network_policy(ns, bad))
    causes = body["details"]["causes"]
    assert [c["field"] for c in causes] == [field], (what, causes)
    assert causes[0]["reason"] == reason and text in causes[0]["message"], (what, causes)
    assert body["message"].startswith(f'NetworkPolicy.networking.k8s.io "bad" is invalid: {field}')
    assert body["details"]["kind"] == "NetworkPolicy"
    assert net.list_namespaced_network_policy(ns).items == []  # nothing stored


def test_every_problem_is_one_cause_and_updates_are_validated(
    net: client.NetworkingV1Api, ns: str
) -> None:
    spec = {"podSelector": {}, "ingress": [{"ports": [{"protocol": "tcp", "port": 0}],
                                            "from": [{}]}]}  # fmt: skip
    bad = model(client.V1NetworkPolicy, {"metadata": {"name": "bad"}, "spec": spec})
    body = expect_error(422, "Invalid", lambda: net.create_namespaced_network_policy(ns, bad))
    fields = [c["field"] for c in body["details"]["causes"]]
    assert fields == [f"{P0}.protocol", f"{P0}.port", "spec.ingress[0].from[0]"]
    good = {"metadata": {"name": "ok"}, "spec": port(port=80, endPort=90)}
    net.create_namespaced_network_policy(ns, model(client.V1NetworkPolicy, good))
    patch = {"spec": {"ingress": [{"ports": [{"port": 95, "endPort": 90}]}]}}
    body = expect_error(422, "Invalid",
                        lambda: net.patch_namespaced_network_policy("ok", ns, patch))  # fmt: skip
    assert [c["field"] for c in body["details"]["causes"]] == [f"{P0}.endPort"]
    stored = net.read_namespaced_network_policy("ok", ns)
    rules = need(need(stored.spec, "policy spec").ingress, "spec.ingress")
    ports = need(rules[0].ports, "ingress[0].ports")
    assert ports[0].end_port == 90  # the bad update changed nothing
