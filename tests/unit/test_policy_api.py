"""The NetworkPolicy oracle: policyTypes defaults, malformed and API policies, reasons,
and the engine adapter."""

from __future__ import annotations

from typing import Any

import pytest

from netconform.outcomes import ALLOW, TIMEOUT, pod
from netconform.policy import (
    ContainerPort,
    NamespaceInfo,
    Pod,
    PolicyError,
    PolicyOracle,
    PolicySet,
    labels,
)
from netconform.probes.base import Probe
from tests.unit.test_policy_oracle import (
    ALL_NS,
    EGRESS_DENY_X_A,
    NAMESPACES,
    PODS,
    expr,
    find,
    from_,
    ingress_to_x,
    netpol,
)

WEB = (ContainerPort(80, "serve-80-tcp"), ContainerPort(53, "dns", "UDP"))


def test_policy_types_defaults() -> None:
    assert netpol({"podSelector": {}}).types == ("Ingress",)
    assert netpol({"podSelector": {}, "egress": []}).types == ("Ingress",)
    assert netpol({"podSelector": {}, "egress": [{}]}).types == ("Ingress", "Egress")
    assert netpol({"podSelector": {}, "policyTypes": ["Egress"]}).types == ("Egress",)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"ingress": [{"from": [{}]}]}, "spec.ingress[0].from[0]: must specify a peer"),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
            "may not specify both ipBlock and another peer",
        ),
        ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]}, "not a CIDR"),
        ({"podSelector": expr("a", "Near", "b")}, "operator: 'Near' is not a selector operator"),
        ({"podSelector": expr("a", "In")}, "In needs values"),
        ({"ingress": [{"ports": [{"protocol": "ICMP"}]}]}, "'ICMP' is not TCP, UDP or SCTP"),
        ({"ingress": [{"ports": [{"port": "http", "endPort": 90}]}]}, "endPort: needs"),
        ({"policyTypes": ["Sideways"]}, "spec.policyTypes[0]: 'Sideways' is neither"),
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
