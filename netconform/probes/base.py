"""Probe kinds: one class per kind, each owning its argv, the parsing of real tool output and
the outcome it observes; registered by name.

A kind turns the tasks of one source (a probe to a destination) into invocations: by default
one process per task, but a kind may reach many destinations in one process (fping). The
batch runner (`netconform.probes.batch`) runs every invocation of a source in one exec.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from netconform.command import CommandResult
from netconform.outcomes import Endpoint, Outcome, PingStats, Verdict, plain
from netconform.topology import ProbeSettings


@dataclass(frozen=True)
class Probe:
    """What to try against a destination: a kind, a port and kind parameters."""

    kind: str
    """A registered kind name: icmp, tcp, udp, http, https, dns, tls, mtu."""
    port: int = 0
    params: tuple[tuple[str, str], ...] = ()
    """Kind parameters (`("size", "1472")`, `("server", "10.200.0.10")`)."""

    def param(self, key: str, default: str = "") -> str:
        return dict(self.params).get(key, default)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.port}" if self.port else self.kind


@dataclass(frozen=True)
class Task:
    """One probe from one source to one destination, with an id unique in its batch."""

    id: str
    probe: Probe
    destination: Endpoint


@dataclass(frozen=True)
class Observation:
    """What one task observed."""

    outcome: Outcome
    detail: str
    """Human summary: `3/3 replies, rtt 0.04/0.05/0.07 ms`, `connection refused`."""
    raw: CommandResult
    """The tool's own output, for the report."""
    ping: PingStats | None = None
    starved: bool = False
    """Its batch was starved of CPU where it ran: its timings include scheduling delay."""


@dataclass(frozen=True)
class Invocation:
    """One process of a batch and the tasks its output answers."""

    argv: tuple[str, ...]
    tasks: tuple[Task, ...]
    stdin: str = ""
    """One word written to the process's stdin (a UDP payload); empty: none."""


class ProbeKind(ABC):
    """A kind of probe. Subclasses set `name` and implement `argv` and `parse` (one process
    per task), or override `invocations` and `interpret` (many tasks per process)."""

    name: ClassVar[str]
    tools: ClassVar[tuple[str, ...]] = ()
    """Programs the probe image must have."""
    capabilities: ClassVar[frozenset[str]] = frozenset()
    """Linux capabilities the tool needs in the source pod (ICMP echo: NET_RAW)."""

    def invocations(self, tasks: Sequence[Task], settings: ProbeSettings) -> list[Invocation]:
        return [Invocation(tuple(self.argv(t, settings)), (t,), self.stdin(t)) for t in tasks]

    def interpret(
        self, invocation: Invocation, raw: CommandResult, settings: ProbeSettings
    ) -> dict[str, Observation]:
        task = invocation.tasks[0]
        return {task.id: self.parse(task, raw, settings)}

    def stdin(self, task: Task) -> str:
        return ""

    def numbers(self, raw: CommandResult, outcome: Outcome) -> dict[str, float]:
        """Numbers the tool's own output gives beyond the outcome (dig's query time, curl's
        connect time), for the outcome file and baseline drift; none by default."""
        return {}

    @abstractmethod
    def argv(self, task: Task, settings: ProbeSettings) -> list[str]:
        """The command for one task, as the probe image's tools take it."""

    @abstractmethod
    def parse(self, task: Task, raw: CommandResult, settings: ProbeSettings) -> Observation:
        """The observation from the tool's real output."""


_KINDS: dict[str, ProbeKind] = {}


def register(cls: type[ProbeKind]) -> type[ProbeKind]:
    """Class decorator: make a kind available by its name."""
    _KINDS[cls.name] = cls()
    return cls


def kind(name: str) -> ProbeKind:
    """The registered kind called `name`."""
    from netconform import probes  # noqa: F401  (imports every kind module once)

    if name not in _KINDS:
        raise ValueError(f"unknown probe kind {name!r} (known: {', '.join(sorted(_KINDS))})")
    return _KINDS[name]


def kinds() -> tuple[str, ...]:
    from netconform import probes  # noqa: F401

    return tuple(sorted(_KINDS))


def failed(task: Task, raw: CommandResult, verdict: Verdict, detail: str) -> Observation:
    """An observation that is only a verdict."""
    return Observation(plain(verdict), detail, raw)


def last_line(raw: CommandResult) -> str:
    lines = (raw.stderr.strip() or raw.stdout.strip()).splitlines()
    return lines[-1][:160] if lines else "no output"


def missing_tool(raw: CommandResult) -> bool:
    """The program does not exist where the probe ran (shell rc 127)."""
    return raw.rc == 127
