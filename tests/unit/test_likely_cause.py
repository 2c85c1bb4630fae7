"""The cause hint follows the shape of all failures in the matrix."""

from __future__ import annotations

from netconform.outcomes import ALLOW, TIMEOUT, Case, Endpoint, load_balancer, node_port
from netconform.reachability import likely_cause, node_cause

PODS = [Endpoint(r, f"probe-{i}", f"10.{100 + n}.1.{i}", f"{r}-node-0")
        for n, r in enumerate(("central", "east", "west")) for i in range(2)]  # fmt: skip


def matrix(broken: object) -> list[Case]:
    """Every ordered pod pair; `broken(src, dst)` says which time out."""
    return [
        Case(s, d, "icmp", 0, ALLOW, TIMEOUT if broken(s, d) else ALLOW, "")  # type: ignore[operator]
        for s in PODS for d in PODS if s != d
    ]  # fmt: skip


def test_no_failure_no_hint() -> None:
    assert likely_cause(matrix(lambda s, d: False)) == ""


def test_one_pod_in_every_failure() -> None:
    victim = PODS[5]
    hint = likely_cause(matrix(lambda s, d: victim in (s, d)))
    assert hint.startswith(f"every failed case involves {victim.label}")


def test_a_pod_that_reaches_others_is_not_blamed_for_its_route() -> None:
    """Contradicting data: every failure involves PODS[5] (west), but it reaches the other
    west pod: its route works; what fails is its path to the other regions."""
    victim = PODS[5]
    hint = likely_cause(matrix(lambda s, d: victim in (s, d) and s.cluster != d.cluster))
    assert "that pod's route" not in hint
    assert hint.startswith("only cross-region traffic fails")


def test_cross_region_only() -> None:
    cut = {"east", "west"}
    hint = likely_cause(matrix(lambda s, d: {s.cluster, d.cluster} == cut))
    assert hint.startswith("only cross-region traffic fails (east<->west)")


def test_failures_inside_a_region() -> None:
    hint = likely_cause(matrix(lambda s, d: s.cluster == d.cluster == "east" or d.name == "x"))
    assert hint.startswith("failures inside a region too")


def service_cases(broken: object) -> list[Case]:
    """Every probe pod to each region's echo LoadBalancer; `broken(src, lb)` times out."""
    lbs = [load_balancer(r, f"{r}/echo-lb", f"198.18.{n}.11")
           for n, r in enumerate(("central", "east", "west"))]  # fmt: skip
    return [
        Case(s, lb, "http", 80, ALLOW, TIMEOUT if broken(s, lb) else ALLOW, "")  # type: ignore[operator]
        for s in PODS for lb in lbs
    ]  # fmt: skip


def test_node_cause_never_blames_kube_proxy_for_a_cut_between_regions() -> None:
    """Contradicting data: the same Services answer inside every region; only east<->west
    fails, from several nodes to several Services."""
    cut = {"east", "west"}
    hint = node_cause(service_cases(lambda s, d: {s.cluster, d.cluster} == cut))
    assert "kube-proxy" not in hint.replace("not kube-proxy", "")
    assert hint.startswith("only cross-region cases fail (east->west, west->east)")


def test_node_cause_never_blames_endpoints_that_answer_other_sources() -> None:
    """Contradicting data: west's LB fails from east only; central and west reach it."""
    hint = node_cause(service_cases(lambda s, d: s.cluster == "east" and d.cluster == "west"))
    assert "its endpoints" not in hint
    assert "which answers from central, west" in hint or "cross-region" in hint


def test_node_cause_names_the_node_whose_nodeport_alone_fails() -> None:
    """Contradicting data for "its endpoints": the same Service answers on the other node."""
    ports = [node_port("west", "west/echo-nodeport", f"west-node-{n}", f"10.102.0.{10 + n}")
             for n in (0, 1)]  # fmt: skip
    cases = [Case(s, p, "http", 30004, ALLOW, TIMEOUT if p.node == "west-node-1" else ALLOW, "")
             for s in PODS for p in ports]  # fmt: skip
    hint = node_cause(cases)
    assert "its endpoints" not in hint
    assert "kube-proxy's NodePort rules on node west/west-node-1" in hint
