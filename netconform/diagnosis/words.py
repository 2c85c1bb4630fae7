"""What each candidate says when it holds: the component, the place, and why, in one line."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from netconform.diagnosis.model import ENDPOINTS_FACT, Seen, Words, _lost
from netconform.diagnosis.scopes import dns_server

# --- words: what each candidate says ------------------------------------------------------


def _kinds(cases: Sequence[Seen]) -> str:
    return ", ".join(sorted({s.case.protocol for s in cases}))


def policy_words(direction: str) -> Words:
    """What a policy candidate says: `egress`, `ingress`, or both (`ingress and egress`)."""
    towards = {"egress": "from them", "ingress": "to them"}.get(direction, "to and from them")
    there = {"egress": "from there", "ingress": "to those pods and their Services"}.get(
        direction, "to and from there"
    )

    def words(key: str, _covered: Sequence[Seen]) -> str:
        where, _, names = key.partition(": ")
        return (
            f"NetworkPolicy {names} denies all {direction} of the pods in {where}: the "
            f"network-policy oracle expects every probe {towards} dropped, so other checks' "
            f"probes {there} fail by that policy, not the network"
        )

    return words


def _path_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"{key} path down: every probe kind fails across it ({_kinds(covered)}): the peering, "
        "routes or firewall between the regions drop it"
    )


def _world_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"{key}: the destination's public addresses fail from there too ({_kinds(covered)}; "
        "a VPC sends them through its own gateway, so they fail only where that path is "
        "broken too)"
    )


def _sources(covered: Sequence[Seen]) -> int:
    return len({s.case.source for s in covered})


def _service_words(key: str, covered: Sequence[Seen]) -> str:
    said = [s for s in covered if s.case.protocol == ENDPOINTS_FACT]
    probed = [s for s in covered if s.case.protocol != ENDPOINTS_FACT]
    why = f" ({said[0].case.detail})" if said else " (its selector matches no ready pod)"
    how = "fails" if said else "refuses"
    return f"Service {key} has no ready endpoint: it {how} all {_sources(probed)} source(s){why}"


def _port_words(key: str, covered: Sequence[Seen]) -> str:
    direction, _, port = key.partition(" ")
    return (
        f"{direction} {port} blocked: every probe to that port fails while other ports between "
        "these regions connect (a security group / firewall rule for it is missing, or a deny "
        "rule wins)"
    )


def _loss_words(key: str, covered: Sequence[Seen]) -> str:
    pings = [s.case.ping for s in covered if _lost(s) and s.case.ping is not None]
    sent = sum(p.transmitted for p in pings)
    lost = sent - sum(p.received for p in pings)
    rate = f"{lost} of {sent} pings lost ({100 * lost / sent:.0f}%)" if sent else "pings lost"
    others = len(covered) - len(pings)
    more = f", and {others} other probe(s) timed out on the same path" if others else ""
    return f"packet loss {key}: {rate} in the failing pod pairs{more} (a lossy link or queue)"


def _node_words(key: str, covered: Sequence[Seen]) -> str:
    return f"node {key} unreachable: every probe to its pods fails, other nodes' pods answer"


def _source_node_words(key: str, covered: Sequence[Seen]) -> str:
    return f"node {key} reaches nothing: every probe from its pods fails, other nodes' succeed"


def _nodeport_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"NodePorts of node {key} closed: no NodePort answers there while other nodes' do "
        "(kube-proxy's rules on that node)"
    )


def _pod_words(key: str, covered: Sequence[Seen]) -> str:
    return f"pod {key} unreachable: every probe to it fails, other pods answer (its route)"


def _dns_from_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"{key}'s cluster DNS answers nothing: every lookup from its pods through it fails, "
        "its own zone's included (its DNS pods or their Service)"
    )


def _dns_zone_words(own_dns: Callable[[Seen], bool]) -> Words:
    def words(key: str, covered: Sequence[Seen]) -> str:
        direct = sorted({dns_server(s.case) for s in covered if not own_dns(s)})
        lb = (
            f"; lookups asked straight at {', '.join(direct)} fail too: {key}'s DNS load "
            "balancer does not answer"
            if direct
            else f": {key}'s DNS load balancer, or the stub domains forwarding to it"
        )
        return f"{key}'s names cannot be resolved from other clusters{lb}"

    return words


def _lb_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"LoadBalancer {key} does not answer: all {_sources(covered)} source(s) fail "
        "(the load balancer, or its health checks of the nodes)"
    )


def _ingress_words(key: str, covered: Sequence[Seen]) -> str:
    return (
        f"the ingress controller of {key} does not answer: every request to it fails from all "
        f"{_sources(covered)} source(s) (its pods, or its LoadBalancer)"
    )
