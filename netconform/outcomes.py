"""Named outcomes and cases: expected vs observed, each able to say what broke."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    """What a probe saw, or what an expectation demands."""

    ALLOW = "ALLOW"
    """Replies came back / the connection was accepted."""
    TIMEOUT = "TIMEOUT"
    """Silence: packets dropped somewhere."""
    REFUSED = "REFUSED"
    """The destination answered with a reset: reachable, nothing listening."""
    UNREACHABLE = "UNREACHABLE"
    """An ICMP unreachable came back: no route."""
    LOSS = "LOSS"
    """Some replies, but more loss than allowed."""
    ERROR = "ERROR"
    """The probe could not run (exec failed, tool missing)."""


@dataclass(frozen=True)
class Endpoint:
    """One end of a case: a pod or a service, with its address."""

    cluster: str
    name: str
    ip: str
    node: str = ""

    @property
    def label(self) -> str:
        return f"{self.cluster}/{self.name} ({self.ip})"


@dataclass(frozen=True)
class Case:
    """One expectation checked against one observation."""

    source: Endpoint
    destination: Endpoint
    protocol: str
    """`icmp` or `tcp`."""
    port: int
    expected: Verdict
    observed: Verdict
    detail: str

    @property
    def passed(self) -> bool:
        return self.expected == self.observed

    @property
    def target(self) -> str:
        port = f":{self.port}" if self.protocol == "tcp" else ""
        return f"{self.destination.label}{port}"

    def describe(self) -> str:
        return (
            f"{self.source.label} -> {self.target} {self.protocol} "
            f"expected {self.expected} observed {self.observed} ({self.detail})"
        )


def failure_report(cases: Iterable[Case], cause: str = "") -> str:
    """The assertion message for a set of cases: every failed case on its own line."""
    failed = [c for c in cases if not c.passed]
    if not failed:
        return ""
    lines = [f"{len(failed)} case(s) failed:"]
    lines += [f"  {case.describe()}" for case in failed]
    if cause:
        lines.append(f"likely cause: {cause}")
    return "\n".join(lines)
