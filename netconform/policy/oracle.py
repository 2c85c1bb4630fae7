"""The policy set as an engine Oracle: Endpoint, Endpoint, Probe -> ALLOW or TIMEOUT.

Endpoints are pods, found in the set by (cluster, IP), else by (cluster, name) or
(cluster, namespace/name). A probe kind maps to the protocol and port a CNI sees: `icmp` and
`mtu` are ICMP (admitted only by rules without ports), `udp` is UDP, `dns` is UDP (TCP with
its `tcp` parameter) on 53 by default, `http` TCP 80, `https` and `tls` TCP 443, `tcp` TCP.
A policy drop is silence, so a denied case is expected as TIMEOUT.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from netconform.outcomes import ALLOW, TIMEOUT, Endpoint, Outcome, Verdict
from netconform.policy.evaluate import PolicySet
from netconform.policy.model import ICMP, Pod
from netconform.probes.base import Probe

_KINDS: dict[str, tuple[str, int]] = {
    "icmp": (ICMP, 0),
    "mtu": (ICMP, 0),
    "tcp": ("TCP", 0),
    "udp": ("UDP", 0),
    "sctp": ("SCTP", 0),
    "dns": ("UDP", 53),
    "http": ("TCP", 80),
    "https": ("TCP", 443),
    "tls": ("TCP", 443),
}
"""Probe kind -> (protocol, port when the probe names none)."""


def protocol_port(probe: Probe) -> tuple[str, int]:
    """What a probe puts on the wire, as a NetworkPolicy sees it."""
    if probe.kind not in _KINDS:
        raise ValueError(f"probe kind {probe.kind!r} has no NetworkPolicy protocol")
    protocol, default = _KINDS[probe.kind]
    if probe.kind == "dns" and probe.param("tcp") == "true":
        protocol = "TCP"
    return protocol, probe.port or default


@dataclass(frozen=True)
class Reached(Outcome):
    """Expected: the traffic reaches the pod, accepted or refused by it (a user's pod may
    declare a port it does not serve: its reset still came through every policy)."""

    verdict: Verdict = Verdict.ALLOW

    def satisfied_by(self, observed: Outcome) -> bool:
        return observed.verdict in (Verdict.ALLOW, Verdict.REFUSED)

    def __str__(self) -> str:
        return "ALLOW or REFUSED"


REACHED = Reached()


@dataclass(frozen=True)
class PolicyOracle:
    """Expected outcomes from a PolicySet; call it as the engine calls an Oracle."""

    policies: PolicySet
    refusing: Collection[Endpoint] = ()
    """Destinations where a refused connection counts as reached (`REACHED` for ALLOW)."""

    def pod(self, endpoint: Endpoint) -> Pod:
        """The pod behind an endpoint (LookupError naming it when there is none)."""
        if endpoint.kind != "pod":
            raise LookupError(f"{endpoint.label}: the policy oracle judges pods only")
        try:
            return self.policies.pod(endpoint.cluster, endpoint.ip)
        except LookupError:
            return self.policies.pod(endpoint.cluster, endpoint.name)

    def __call__(self, src: Endpoint, dst: Endpoint, probe: Probe) -> Outcome:
        protocol, port = protocol_port(probe)
        ok = self.policies.allowed(self.pod(src), self.pod(dst), port, protocol)
        if not ok:
            return TIMEOUT
        return REACHED if dst in self.refusing else ALLOW

    def why(self, src: Endpoint, dst: Endpoint, probe: Probe) -> str:
        protocol, port = protocol_port(probe)
        return self.policies.why(self.pod(src), self.pod(dst), port, protocol)
