"""Outcomes of the handshake probe kind (`netconform.probes.handshake`): an aspect of the
served certificate, and what a server does with a handshake pinned to one TLS version.

They print so that a failure reads `expected CERT verified by netconform test CA observed
CERT not trusted: ...` or `expected TLSv1 REFUSED observed ACCEPTED` (the version is the
case's: the expectation names it, the observation says what the server did).
"""

from __future__ import annotations

from dataclasses import dataclass

from netconform.outcomes import Outcome


@dataclass(frozen=True)
class CertAspect(Outcome):
    """One aspect of the served certificate: right or not, and what was found."""

    aspect: str = ""
    """served, chain, san or expiry."""
    ok: bool = True
    text: str = ""
    """`verified by netconform test CA`, `not trusted: chain does not verify ...`."""

    def satisfied_by(self, observed: Outcome) -> bool:
        return (
            isinstance(observed, CertAspect)
            and observed.verdict == self.verdict
            and observed.aspect == self.aspect
            and observed.ok == self.ok
        )

    def __str__(self) -> str:
        return f"CERT {self.text}"


@dataclass(frozen=True)
class VersionOffer(Outcome):
    """Expected: a handshake pinned to `version` is accepted, or refused."""

    version: str = ""
    accepted: bool = False

    def satisfied_by(self, observed: Outcome) -> bool:
        return isinstance(observed, VersionAnswer) and observed.accepted == self.accepted

    def __str__(self) -> str:
        return f"{self.version} {'ACCEPTED' if self.accepted else 'REFUSED'}"


@dataclass(frozen=True)
class VersionAnswer(Outcome):
    """Observed: what the server did with a handshake pinned to the case's version."""

    accepted: bool = False
    negotiated: str = ""
    """The version the handshake settled on (accepted only)."""
    how: str = ""
    """How it was refused (`alert TLSV1_ALERT_PROTOCOL_VERSION`), or the cipher."""

    def satisfied_by(self, observed: Outcome) -> bool:
        return isinstance(observed, VersionAnswer) and observed.accepted == self.accepted

    def __str__(self) -> str:
        return "ACCEPTED" if self.accepted else "REFUSED"
