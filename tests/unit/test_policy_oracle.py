"""The NetworkPolicy oracle against the semantics of SEMANTICS.md and the API reference: one
named case per rule, the Calico stars demo (seed 004) as a truth table at each step, and the
bulk matrix agreeing with case-by-case evaluation on a large generated set."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from netconform.outcomes import ALLOW, TIMEOUT, pod
from netconform.policy import (
    ContainerPort,
    NamespaceInfo,
    Pod,
    Policy,
    PolicyError,
    PolicyOracle,
    PolicySet,
    labels,
)
from netconform.policy.synthetic import PORTS, generate
from netconform.probes.base import Probe

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


ALL_NS = {"namespaceSelector": {}}
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


def test_policy_types_defaults() -> None:
    assert netpol({"podSelector": {}}).types == ("Ingress",)
    assert netpol({"podSelector": {}, "egress": []}).types == ("Ingress",)
    assert netpol({"podSelector": {}, "egress": [{}]}).types == ("Ingress", "Egress")
    assert netpol({"podSelector": {}, "policyTypes": ["Egress"]}).types == ("Egress",)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"ingress": [{"from": [{}]}]}, "spec.ingress[0].from[0]: a peer needs"),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
            "ipBlock may not be combined",
        ),
        ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]}, ".ipBlock:"),
        ({"podSelector": expr("a", "Near", "b")}, "unknown operator 'Near'"),
        ({"podSelector": expr("a", "In")}, "In needs values"),
        ({"ingress": [{"ports": [{"protocol": "ICMP"}]}]}, "unknown protocol 'ICMP'"),
        ({"ingress": [{"ports": [{"port": "http", "endPort": 90}]}]}, "endPort: needs"),
        ({"policyTypes": ["Sideways"]}, "unknown type 'Sideways'"),
    ],
)
def test_malformed_policies_name_where(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match="NetworkPolicy east/x/np") as err:
        netpol(spec)
    assert message in str(err.value)


def test_from_api_objects() -> None:
    raw_pod = {
        "metadata": {"name": "backend", "namespace": "stars", "labels": {"role": "backend"}},
        "spec": {
            "containers": [{"name": "b", "ports": [{"containerPort": 6379, "name": "redis"}]}]
        },
        "status": {"podIP": "10.9.0.5"},
    }
    p = Pod.from_api("east", raw_pod)
    assert p == Pod(
        "east",
        "stars",
        "backend",
        "10.9.0.5",
        labels(role="backend"),
        (ContainerPort(6379, "redis", "TCP"),),
    )
    ns = NamespaceInfo.from_api("east", {"metadata": {"name": "stars"}})
    assert ns.effective_labels == {"kubernetes.io/metadata.name": "stars"}


# -- why --------------------------------------------------------------------------------------


def test_why_names_the_deciding_policy() -> None:
    deny = netpol({"podSelector": {}, "ingress": []}, name="default-deny")
    ps = PolicySet([deny, EGRESS_DENY_X_A], NAMESPACES, PODS)
    x_a, x_b, y_a = (find(ps, s) for s in ("east/x/a", "east/x/b", "east/y/a"))
    assert ps.why(y_a, x_b, 6379, "tcp") == (
        "ingress of east/x/b denied by default-deny (no rule of it admits east/y/a on tcp/6379)"
    )
    assert ps.why(x_a, x_b, 0, "icmp") == (
        "ingress of east/x/b denied by default-deny (no rule of it admits east/x/a on icmp); "
        "egress of east/x/a denied by np (no rule of it admits east/x/b on icmp)"
    )
    ps = PolicySet([ingress_to_x({"ports": [{"port": 80}]})], NAMESPACES, PODS)
    assert ps.why(find(ps, "east/y/a"), find(ps, "east/x/b"), 80, "TCP") == (
        "allowed east/y/a -> east/x/b on tcp/80: egress open (no policy selects it), "
        "ingress admitted by np rule 1"
    )


def test_unknown_and_ambiguous_pods() -> None:
    ps = PolicySet([], NAMESPACES, PODS)
    with pytest.raises(LookupError, match="ambiguous"):
        ps.pod("east", "a")
    with pytest.raises(LookupError, match="not a known pod"):
        ps.pod("east", "nope")
    assert ps.pod("east", "10.1.1.2").name == "c"
    assert ps.pod("east", "c").namespace == "y"


# -- the engine adapter -----------------------------------------------------------------------


def test_oracle_adapter() -> None:
    policy = ingress_to_x(
        from_(ALL_NS, ports=[{"port": 80}, {"protocol": "UDP", "port": 53}]),
    )
    oracle = PolicyOracle(PolicySet([policy], NAMESPACES, PODS))
    src, dst = pod("east", "c", "10.1.1.2"), pod("east", "b", "10.1.0.2")
    by_name = pod("east", "x/b", "")
    assert oracle(src, dst, Probe("tcp", 80)) == ALLOW
    assert oracle(src, by_name, Probe("http")) == ALLOW
    assert oracle(src, dst, Probe("tcp", 8080)) == TIMEOUT
    assert oracle(src, dst, Probe("udp", 53)) == ALLOW
    assert oracle(src, dst, Probe("dns")) == ALLOW
    assert oracle(src, dst, Probe("dns", params=(("tcp", "true"),))) == TIMEOUT
    assert oracle(src, dst, Probe("icmp")) == TIMEOUT
    assert oracle(dst, src, Probe("icmp")) == ALLOW
    assert "no rule of it admits east/y/c on tcp/8080" in oracle.why(src, dst, Probe("tcp", 8080))
    with pytest.raises(LookupError, match="not a known pod"):
        oracle(pod("east", "ghost", "10.9.9.9"), dst, Probe("tcp", 80))
    with pytest.raises(ValueError, match="no NetworkPolicy protocol"):
        oracle(src, dst, Probe("quic", 443))


# -- the Calico stars demo, seed 004 ----------------------------------------------------------

STARS_NS = (
    NamespaceInfo("east", "stars"),
    NamespaceInfo("east", "client", labels(role="client")),
    NamespaceInfo("east", "management-ui", labels(role="management-ui")),
)
STARS_PODS = (
    Pod(
        "east",
        "management-ui",
        "management-ui",
        "10.1.0.10",
        labels(role="management-ui"),
        (ContainerPort(9001, "ui"),),
    ),
    Pod("east", "stars", "frontend", "10.1.0.20", labels(role="frontend"), (ContainerPort(80),)),
    Pod("east", "stars", "backend", "10.1.0.30", labels(role="backend"), (ContainerPort(6379),)),
    Pod("east", "client", "client", "10.1.0.40", labels(role="client"), (ContainerPort(9000),)),
)
DEFAULT_DENY = {"podSelector": {"matchLabels": {}}}
ALLOW_UI = {
    "podSelector": {"matchLabels": {}},
    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"role": "management-ui"}}}]}],
}
BACKEND = {
    "podSelector": {"matchLabels": {"role": "backend"}},
    "ingress": [
        {
            "from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
            "ports": [{"protocol": "TCP", "port": 6379}],
        }
    ],
}
FRONTEND = {
    "podSelector": {"matchLabels": {"role": "frontend"}},
    "ingress": [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"role": "client"}}}],
            "ports": [{"protocol": "TCP", "port": 80}],
        }
    ],
}
STEPS: list[tuple[str, list[Policy]]] = [("no policy", [])]
STEPS.append(
    (
        "default deny in stars and client",
        [
            *STEPS[-1][1],
            netpol(DEFAULT_DENY, "stars", "default-deny"),
            netpol(DEFAULT_DENY, "client", "default-deny"),
        ],
    )
)
STEPS.append(
    (
        "allow UI in stars and client",
        [
            *STEPS[-1][1],
            netpol(ALLOW_UI, "stars", "allow-ui"),
            netpol(ALLOW_UI, "client", "allow-ui"),
        ],
    )
)
STEPS.append(
    ("allow frontend -> backend", [*STEPS[-1][1], netpol(BACKEND, "stars", "backend-policy")])
)
STEPS.append(
    ("allow client -> frontend", [*STEPS[-1][1], netpol(FRONTEND, "stars", "frontend-policy")])
)

# Rows: sources; columns: destinations on their own TCP port (ui:9001 F:80 B:6379 C:9000).
STARS_TABLES = {
    "no policy": """
        ui F  B  C
    ui  -  .  .  .
    F   .  -  .  .
    B   .  .  -  .
    C   .  .  .  -
    """,
    "default deny in stars and client": """
        ui F  B  C
    ui  -  X  X  X
    F   .  -  X  X
    B   .  X  -  X
    C   .  X  X  -
    """,
    "allow UI in stars and client": """
        ui F  B  C
    ui  -  .  .  .
    F   .  -  X  X
    B   .  X  -  X
    C   .  X  X  -
    """,
    "allow frontend -> backend": """
        ui F  B  C
    ui  -  .  .  .
    F   .  -  .  X
    B   .  X  -  X
    C   .  X  X  -
    """,
    "allow client -> frontend": """
        ui F  B  C
    ui  -  .  .  .
    F   .  -  .  X
    B   .  X  -  X
    C   .  .  X  -
    """,
}
SHORT = {"management-ui": "ui", "frontend": "F", "backend": "B", "client": "C"}


def stars_table(ps: PolicySet) -> str:
    """The truth table: `.` allowed, `X` denied, `-` a pod to itself (not a case)."""
    lines = ["    " + "  ".join(f"{SHORT[p.name]:<2}" for p in ps.pods).rstrip()]
    for src in ps.pods:
        cells = [
            "-" if src == dst else "." if ps.allowed(src, dst, dst.ports[0].port, "TCP") else "X"
            for dst in ps.pods
        ]
        lines.append(f"{SHORT[src.name]:<4}" + "  ".join(f"{c:<2}" for c in cells).rstrip())
    return "\n".join(lines)


def normalize(table: str) -> str:
    return "\n".join(" ".join(line.split()) for line in table.strip().splitlines())


@pytest.mark.parametrize(("step", "policies"), STEPS, ids=[s for s, _ in STEPS])
def test_stars_demo_truth_table(step: str, policies: list[Policy]) -> None:
    ps = PolicySet(policies, STARS_NS, STARS_PODS)
    assert normalize(stars_table(ps)) == normalize(STARS_TABLES[step]), stars_table(ps)


def test_stars_demo_reasons() -> None:
    ps = PolicySet(STEPS[-1][1], STARS_NS, STARS_PODS)
    client, backend = ps.pod("east", "client"), ps.pod("east", "backend")
    frontend = ps.pod("east", "frontend")
    assert ps.why(client, backend, 6379, "TCP") == (
        "ingress of east/stars/backend denied by default-deny, allow-ui, backend-policy "
        "(no rule of them admits east/client/client on tcp/6379)"
    )
    assert ps.why(frontend, backend, 6379, "TCP").endswith(
        "ingress admitted by backend-policy rule 1"
    )
    assert not ps.allowed(frontend, backend, 6380, "TCP")
    assert not ps.allowed(frontend, backend, 0, "ICMP")


# -- at scale: bulk evaluation agrees with case by case (not timed) ---------------------------


def test_matrix_agrees_with_allowed_at_benchmark_scale() -> None:
    """100 policies x 1,000 pods x 5 ports, as benchmarks/bench_policy_oracle.py builds;
    the benchmark times it, this test only checks it."""
    ps = generate(n_policies=100, n_pods=1000).policy_set()
    rnd = random.Random(4)
    total = 0
    for port, protocol in PORTS:
        rows = ps.matrix(port, protocol)
        total += sum(r.bit_count() for r in rows)
        for _ in range(2000):
            s, d = rnd.randrange(len(ps.pods)), rnd.randrange(len(ps.pods))
            assert ps.allowed(s, d, port, protocol) == bool(rows[s] >> d & 1), ps.why(
                s, d, port, protocol
            )
    cases = len(PORTS) * len(ps.pods) ** 2
    assert 0 < total < cases, "the generated set should allow some cases and deny others"


@pytest.mark.parametrize("seed", range(5))
def test_matrix_agrees_with_allowed_exhaustively(seed: int) -> None:
    ps = generate(n_policies=15, n_pods=40, clusters=2, namespaces=3, seed=seed).policy_set()
    for port, protocol in (*PORTS, (0, "ICMP")):
        rows = ps.matrix(port, protocol)
        for s in range(len(ps.pods)):
            for d in range(len(ps.pods)):
                assert ps.allowed(s, d, port, protocol) == bool(rows[s] >> d & 1)
