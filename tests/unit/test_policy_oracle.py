"""The NetworkPolicy oracle against the semantics of SEMANTICS.md and the API reference: one
named case per rule, the Calico stars demo (seed 004) as a truth table at each step, and the
bulk matrix agreeing with case-by-case evaluation on a large generated set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from netconform.policy import (
    ContainerPort,
    NamespaceInfo,
    Pod,
    Policy,
    PolicySet,
    labels,
)

WEB = (ContainerPort(80, "serve-80-tcp"), ContainerPort(53, "dns", "UDP"))

# Cluster east: namespaces x (team=a), y (team=b), z (no team); cluster west: namespace x.
NAMESPACES = (
    NamespaceInfo("east", "x", labels(ns="x", team="a")),
    NamespaceInfo("east", "y", labels(ns="y", team="b")),
    NamespaceInfo("east", "z", labels(ns="z")),
    NamespaceInfo("west", "x", labels(ns="x", team="a")),
)
PODS = (
    Pod("east", "x", "a", "10.1.0.1", labels(pod="a"), (*WEB, ContainerPort(8080, "web"))),
    Pod("east", "x", "b", "10.1.0.2", labels(pod="b"), (*WEB, ContainerPort(8080, "http"))),
    Pod("east", "y", "a", "10.1.1.1", labels(pod="a"), WEB),
    Pod("east", "y", "c", "10.1.1.2", labels(pod="c", tier="web"), WEB),
    Pod("east", "z", "d", "10.1.2.1", labels(pod="d"), WEB),
    Pod("west", "x", "a", "10.2.0.1", labels(pod="a"), (*WEB, ContainerPort(8080, "http"))),
)


def netpol(spec: dict[str, Any], ns: str = "x", name: str = "np", cluster: str = "east") -> Policy:
    return Policy.from_api(cluster, {"metadata": {"name": name, "namespace": ns}, "spec": spec})


def ingress_to_x(*rules: dict[str, Any]) -> Policy:
    """A policy selecting every pod of east/x with these ingress rules."""
    return netpol({"podSelector": {}, "ingress": list(rules)})


def from_(*peers: dict[str, Any], ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"from": list(peers)}
    if ports is not None:
        rule["ports"] = ports
    return rule


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return {"matchExpressions": [e]}


@dataclass(frozen=True)
class Semantic:
    name: str
    policies: tuple[Policy, ...]
    src: str
    """cluster/namespace/name"""
    dst: str
    allowed: bool
    port: int = 80
    protocol: str = "TCP"


ALL_NS: dict[str, Any] = {"namespaceSelector": {}}
EGRESS_HTTP = netpol(
    {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "http"}]}]}
)
EGRESS_DENY_X_A = netpol({"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"]})

CASES = [
    Semantic("no policy: open", (), "east/y/a", "east/x/b", True),
    Semantic(
        "empty ingress list denies ingress",
        (netpol({"podSelector": {}, "ingress": []}),),
        "east/x/a",
        "east/x/b",
        False,
    ),
    Semantic("empty egress list denies egress", (EGRESS_DENY_X_A,), "east/x/a", "east/y/a", False),
    Semantic(
        "egress-only policy leaves ingress open",
        (EGRESS_DENY_X_A,),
        "east/y/a",
        "east/x/a",
        True,
    ),
    Semantic(
        "pod selected by no policy is open",
        (netpol({"podSelector": {"matchLabels": {"pod": "b"}}, "policyTypes": ["Ingress"]}),),
        "east/y/a",
        "east/x/a",
        True,
    ),
    Semantic(
        "rule with neither ports nor peers allows all (other clusters too)",
        (ingress_to_x({}),),
        "west/x/a",
        "east/x/b",
        True,
        port=9999,
        protocol="UDP",
    ),
    Semantic(
        "ports only: that port from any peer",
        (ingress_to_x({"ports": [{"port": 80}]}),),
        "east/y/c",
        "east/x/b",
        True,
    ),
    Semantic(
        "ports only: other port denied",
        (ingress_to_x({"ports": [{"port": 80}]}),),
        "east/y/c",
        "east/x/b",
        False,
        port=81,
    ),
    Semantic(
        "peers are ORed",
        (ingress_to_x(from_({"podSelector": {"matchLabels": {"pod": "zzz"}}}, ALL_NS)),),
        "east/y/c",
        "east/x/b",
        True,
    ),
    Semantic(
        "rules are ORed",
        (ingress_to_x({"ports": [{"port": 81}]}, {"ports": [{"port": 80}]}),),
        "east/y/c",
        "east/x/b",
        True,
    ),
    Semantic(
        "namespaceSelector absent: own namespace admitted",
        (ingress_to_x(from_({"podSelector": {}})),),
        "east/x/a",
        "east/x/b",
        True,
    ),
    Semantic(
        "namespaceSelector absent: other namespace denied",
        (ingress_to_x(from_({"podSelector": {}})),),
        "east/y/a",
        "east/x/b",
        False,
    ),
    Semantic(
        "namespaceSelector empty: every namespace",
        (ingress_to_x(from_(ALL_NS)),),
        "east/z/d",
        "east/x/b",
        True,
    ),
    Semantic(
        "namespaceSelector by labels",
        (ingress_to_x(from_({"namespaceSelector": {"matchLabels": {"team": "b"}}})),),
        "east/z/d",
        "east/x/b",
        False,
    ),
    Semantic(
        "podSelector absent: every pod of the selected namespaces",
        (ingress_to_x(from_({"namespaceSelector": {"matchLabels": {"team": "b"}}})),),
        "east/y/c",
        "east/x/b",
        True,
    ),
    Semantic(
        "podSelector empty: every pod",
        (ingress_to_x(from_({"podSelector": {}})),),
        "east/x/a",
        "east/x/b",
        True,
    ),
    Semantic(
        "namespaceSelector and podSelector in one peer: AND (pod fails)",
        (
            ingress_to_x(
                from_(
                    {
                        "namespaceSelector": {"matchLabels": {"ns": "y"}},
                        "podSelector": {"matchLabels": {"pod": "a"}},
                    }
                )
            ),
        ),
        "east/y/c",
        "east/x/b",
        False,
    ),
    Semantic(
        "namespaceSelector and podSelector in one peer: AND (namespace fails)",
        (
            ingress_to_x(
                from_(
                    {
                        "namespaceSelector": {"matchLabels": {"ns": "y"}},
                        "podSelector": {"matchLabels": {"pod": "a"}},
                    }
                )
            ),
        ),
        "east/x/a",
        "east/x/b",
        False,
    ),
    Semantic(
        "namespaceSelector and podSelector in one peer: AND (both match)",
        (
            ingress_to_x(
                from_(
                    {
                        "namespaceSelector": {"matchLabels": {"ns": "y"}},
                        "podSelector": {"matchLabels": {"pod": "a"}},
                    }
                )
            ),
        ),
        "east/y/a",
        "east/x/b",
        True,
    ),
    Semantic(
        "namespace name label set by the API server",
        (
            ingress_to_x(
                from_({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "z"}}})
            ),
        ),
        "east/z/d",
        "east/x/b",
        True,
    ),
    Semantic(
        "selector peers match only the policy's cluster",
        (ingress_to_x(from_(ALL_NS)),),
        "west/x/a",
        "east/x/b",
        False,
    ),
    Semantic(
        "policies of another cluster do not apply",
        (netpol({"podSelector": {}, "ingress": []}, cluster="west"),),
        "east/x/a",
        "east/x/b",
        True,
    ),
    Semantic(
        "ipBlock matches a pod IP of another cluster",
        (ingress_to_x(from_({"ipBlock": {"cidr": "10.2.0.0/16"}})),),
        "west/x/a",
        "east/x/b",
        True,
    ),
    Semantic(
        "ipBlock except excludes",
        (ingress_to_x(from_({"ipBlock": {"cidr": "10.2.0.0/16", "except": ["10.2.0.0/28"]}})),),
        "west/x/a",
        "east/x/b",
        False,
    ),
    Semantic(
        "ipBlock matches pod IPs of the same cluster",
        (ingress_to_x(from_({"ipBlock": {"cidr": "10.1.1.0/24"}})),),
        "east/y/a",
        "east/x/b",
        True,
    ),
    Semantic(
        "protocol defaults to TCP (TCP admitted)",
        (ingress_to_x({"ports": [{"port": 53}]}),),
        "east/y/a",
        "east/x/b",
        True,
        port=53,
    ),
    Semantic(
        "protocol defaults to TCP (UDP denied)",
        (ingress_to_x({"ports": [{"port": 53}]}),),
        "east/y/a",
        "east/x/b",
        False,
        port=53,
        protocol="UDP",
    ),
    Semantic(
        "SCTP port",
        (ingress_to_x({"ports": [{"protocol": "SCTP", "port": 9000}]}),),
        "east/y/a",
        "east/x/b",
        True,
        port=9000,
        protocol="SCTP",
    ),
    Semantic(
        "port absent: every port of the protocol",
        (ingress_to_x({"ports": [{"protocol": "UDP"}]}),),
        "east/y/a",
        "east/x/b",
        True,
        port=31337,
        protocol="UDP",
    ),
    Semantic(
        "port absent: other protocol denied",
        (ingress_to_x({"ports": [{"protocol": "UDP"}]}),),
        "east/y/a",
        "east/x/b",
        False,
        port=31337,
    ),
    Semantic(
        "named port resolved on the destination",
        (ingress_to_x({"ports": [{"port": "http"}]}),),
        "east/y/a",
        "east/x/b",
        True,
        port=8080,
    ),
    Semantic(
        "named port: another number on the destination denied",
        (ingress_to_x({"ports": [{"port": "http"}]}),),
        "east/y/a",
        "east/x/b",
        False,
        port=80,
    ),
    Semantic(
        "named port: destination without that name denied",
        (ingress_to_x({"ports": [{"port": "http"}]}),),
        "east/y/a",
        "east/x/a",
        False,
        port=8080,
    ),
    Semantic(
        "named port: protocol must match the container port's",
        (ingress_to_x({"ports": [{"protocol": "UDP", "port": "http"}]}),),
        "east/y/a",
        "east/x/b",
        False,
        port=8080,
        protocol="UDP",
    ),
    Semantic(
        "endPort inclusive (upper bound)",
        (ingress_to_x({"ports": [{"port": 53, "endPort": 80}]}),),
        "east/y/a",
        "east/x/b",
        True,
        port=80,
    ),
    Semantic(
        "endPort range (lower bound)",
        (ingress_to_x({"ports": [{"port": 53, "endPort": 80}]}),),
        "east/y/a",
        "east/x/b",
        True,
        port=53,
    ),
    Semantic(
        "endPort: beyond the range denied",
        (ingress_to_x({"ports": [{"port": 53, "endPort": 80}]}),),
        "east/y/a",
        "east/x/b",
        False,
        port=81,
    ),
    Semantic(
        "policyTypes absent, egress list empty: Ingress only (egress open)",
        (netpol({"podSelector": {"matchLabels": {"pod": "a"}}, "egress": []}),),
        "east/x/a",
        "east/y/a",
        True,
    ),
    Semantic(
        "policyTypes absent, egress list empty: Ingress only (ingress denied)",
        (netpol({"podSelector": {"matchLabels": {"pod": "a"}}, "egress": []}),),
        "east/y/a",
        "east/x/a",
        False,
    ),
    Semantic(
        "policyTypes absent, egress rules present: Egress too",
        (
            netpol(
                {
                    "podSelector": {"matchLabels": {"pod": "a"}},
                    "egress": [{"ports": [{"protocol": "UDP", "port": 53}]}],
                }
            ),
        ),
        "east/x/a",
        "east/y/c",
        False,
    ),
    Semantic(
        "egress rule admits its port",
        (
            netpol(
                {
                    "podSelector": {"matchLabels": {"pod": "a"}},
                    "egress": [{"ports": [{"protocol": "UDP", "port": 53}]}],
                }
            ),
        ),
        "east/x/a",
        "east/y/c",
        True,
        port=53,
        protocol="UDP",
    ),
    Semantic(
        "egress ipBlock reaches a pod of another cluster",
        (netpol({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.2.0.0/16"}}]}]}),),
        "east/x/a",
        "west/x/a",
        True,
    ),
    Semantic(
        "egress ipBlock: other addresses denied",
        (netpol({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.2.0.0/16"}}]}]}),),
        "east/x/a",
        "east/y/a",
        False,
    ),
    Semantic(
        "egress named port does not resolve on another cluster's pod",
        (EGRESS_HTTP,),
        "east/x/a",
        "west/x/a",
        False,
        port=8080,
    ),
    Semantic(
        "egress named port resolves on a pod of the policy's cluster",
        (EGRESS_HTTP,),
        "east/x/a",
        "east/x/b",
        True,
        port=8080,
    ),
    Semantic(
        "allowed needs the source's egress too",
        (EGRESS_DENY_X_A, ingress_to_x({})),
        "east/x/a",
        "east/x/b",
        False,
    ),
    Semantic(
        "union of selecting policies",
        (
            netpol({"podSelector": {}, "ingress": []}, name="deny"),
            netpol(
                {
                    "podSelector": {"matchLabels": {"pod": "b"}},
                    "ingress": [{"ports": [{"port": 81}]}],
                },
                name="allow-81",
            ),
        ),
        "east/y/a",
        "east/x/b",
        True,
        port=81,
    ),
    Semantic(
        "matchExpressions In",
        (ingress_to_x(from_({**ALL_NS, "podSelector": expr("pod", "In", "c", "d")})),),
        "east/y/c",
        "east/x/b",
        True,
    ),
    Semantic(
        "matchExpressions In (not in the set)",
        (ingress_to_x(from_({**ALL_NS, "podSelector": expr("pod", "In", "c", "d")})),),
        "east/y/a",
        "east/x/b",
        False,
    ),
    Semantic(
        "matchExpressions NotIn",
        (ingress_to_x(from_({**ALL_NS, "podSelector": expr("pod", "NotIn", "a")})),),
        "east/y/a",
        "east/x/b",
        False,
    ),
    Semantic(
        "matchExpressions NotIn matches a missing key",
        (ingress_to_x(from_({"namespaceSelector": expr("team", "NotIn", "a", "b")})),),
        "east/z/d",
        "east/x/b",
        True,
    ),
    Semantic(
        "matchExpressions Exists",
        (ingress_to_x(from_({**ALL_NS, "podSelector": expr("tier", "Exists")})),),
        "east/y/c",
        "east/x/b",
        True,
    ),
    Semantic(
        "matchExpressions DoesNotExist",
        (ingress_to_x(from_({**ALL_NS, "podSelector": expr("tier", "DoesNotExist")})),),
        "east/y/c",
        "east/x/b",
        False,
    ),
    Semantic(
        "matchExpressions in the policy's podSelector",
        (netpol({"podSelector": expr("pod", "In", "b"), "ingress": []}),),
        "east/y/a",
        "east/x/a",
        True,
    ),
    Semantic(
        "ICMP: admitted by a rule without ports",
        (ingress_to_x(from_(ALL_NS)),),
        "east/y/a",
        "east/x/b",
        True,
        port=0,
        protocol="ICMP",
    ),
    Semantic(
        "ICMP: admitted by a rule with an empty ports list",
        (ingress_to_x(from_(ALL_NS, ports=[])),),
        "east/y/a",
        "east/x/b",
        True,
        port=0,
        protocol="ICMP",
    ),
    Semantic(
        "ICMP: not admitted by a rule with ports",
        (ingress_to_x(from_(ALL_NS, ports=[{"protocol": "TCP"}])),),
        "east/y/a",
        "east/x/b",
        False,
        port=0,
        protocol="ICMP",
    ),
    Semantic("ICMP: open when no policy selects", (), "east/y/a", "east/x/b", True, 0, "ICMP"),
]


def find(ps: PolicySet, spec: str) -> Pod:
    cluster, ns, name = spec.split("/")
    return ps.pod(cluster, f"{ns}/{name}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_semantics(case: Semantic) -> None:
    ps = PolicySet(case.policies, NAMESPACES, PODS)
    src, dst = find(ps, case.src), find(ps, case.dst)
    got = ps.allowed(src, dst, case.port, case.protocol)
    assert got == case.allowed, ps.why(src, dst, case.port, case.protocol)
    rows = ps.matrix(case.port, case.protocol)
    s, d = ps.pods.index(src), ps.pods.index(dst)
    assert bool(rows[s] >> d & 1) == case.allowed, "matrix disagrees with allowed()"
