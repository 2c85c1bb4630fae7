"""Firewall expectations: the topology's required TCP ports open between every ordered pair of
region pod subnets, its declared-closed ports refused or dropped (seed 000's rules)."""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from netconform.outcomes import ALLOW, Case, Endpoint, Outcome, Verdict
from netconform.probes.base import Probe

_BLOCKED = (Verdict.REFUSED, Verdict.TIMEOUT, Verdict.UNREACHABLE)


@dataclass(frozen=True)
class Closed(Outcome):
    """A closed port: refused (a reset or ICMP unreachable) or dropped (silence) both do."""

    def satisfied_by(self, observed: Outcome) -> bool:
        return observed.verdict in _BLOCKED

    def __str__(self) -> str:
        return "CLOSED (refused or dropped)"


CLOSED = Closed(Verdict.TIMEOUT)


def port_probes(required: Collection[int], closed: Collection[int]) -> list[Probe]:
    """A TCP connect per declared port; a closed one carries its expectation as a parameter."""
    probes = [Probe("tcp", port) for port in sorted(required)]
    return probes + [Probe("tcp", port, (("expect", "closed"),)) for port in sorted(closed)]


def listener(template: dict[str, Any], ports: Sequence[int]) -> dict[str, Any]:
    """The listener pod `template` (the suite's YAML) listening on, and declaring, `ports`."""
    pod = copy.deepcopy(template)
    container = pod["spec"]["containers"][0]
    container["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in ports]
    container["env"] = [{"name": "LISTEN_PORTS", "value": " ".join(map(str, ports))}]
    return pod


def declared(_src: Endpoint, _dst: Endpoint, probe: Probe) -> Outcome:
    """The oracle: what the topology declares for the probe's port."""
    return CLOSED if probe.param("expect") == "closed" else ALLOW


def region_port(case: Case) -> str:
    """`east->west:9092`: the slice of a case, one firewall rule."""
    return f"{case.source.cluster}->{case.destination.cluster}:{case.port}"


def other_region(src: Endpoint, dst: Endpoint) -> bool:
    return src.cluster != dst.cluster


def firewall_cause(cases: Sequence[Case]) -> str:
    """Which rules look missing or too open, read from every failure of the measurement.

    "Other ports connect" is said only of a region pair where a required port did connect
    (a declared-closed port passes by timing out, which proves no path); a pair where no
    required port connects is the path between them, not one rule."""
    failed = [c for c in cases if not c.passed]
    if not failed:
        return ""
    shut = [c for c in failed if not isinstance(c.expected, Closed)]
    open_ = sorted({region_port(c) for c in failed if isinstance(c.expected, Closed)})
    connected = {_pair(c) for c in cases if c.passed and not isinstance(c.expected, Closed)}
    parts = []
    ports = sorted({region_port(c) for c in shut if _pair(c) in connected})
    if ports:
        parts.append(
            f"required TCP port(s) not open: {', '.join(ports)} (a security group / firewall "
            "rule / NSG for them is missing or a deny rule wins; other ports between these "
            "regions connect)"
        )
    silent = sorted({_pair(c) for c in shut if _pair(c) not in connected})
    if silent:
        parts.append(
            f"no required port connects {', '.join(silent)}: the path between these regions "
            "(peering, routes) or a rule that denies everything, not one port's rule"
        )
    if open_:
        parts.append(f"declared-closed port(s) connect: {', '.join(open_)} (a rule opens them)")
    return "; ".join(parts)


def _pair(case: Case) -> str:
    return f"{case.source.cluster}->{case.destination.cluster}"
