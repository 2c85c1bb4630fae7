"""The one result type every transport returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    """What a command did, wherever it ran."""

    argv: tuple[str, ...]
    """The command as a list, never a shell string."""
    rc: int
    """Exit code; 127 when the program does not exist."""
    stdout: str
    stderr: str
    where: str = ""
    """The vantage it ran at (`east/probe-0`, `runner`)."""

    @property
    def succeeded(self) -> bool:
        return self.rc == 0

    def describe(self) -> str:
        """One line for a failure message: where, what, rc and the last stderr line."""
        last = (self.stderr.strip().splitlines() or [""])[-1]
        return f"{self.where}: {' '.join(self.argv)} -> rc {self.rc}{': ' + last if last else ''}"
