"""The diagnosis's vocabulary: a case as it reads it, a finding, a candidate kind of explanation,
and the evidence rules candidates hold by."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from netconform.outcomes import TIMEOUT, Case, Verdict


@dataclass(frozen=True)
class Seen:
    """One case of one check, as the diagnosis reads it."""

    check: str
    case: Case

    @property
    def needs_path(self) -> bool:
        """Silence would fail it: the destination must answer (a deny, a closed port or
        "no answer" expectation is satisfied by silence, so it proves nothing about a path)."""
        return not self.case.expected.satisfied_by(TIMEOUT)

    @property
    def failed(self) -> bool:
        return not self.case.passed


@dataclass(frozen=True)
class Finding:
    """One explanation: the component and place it names, and the failures it covers."""

    component: str
    """path, port, service, node, nodeport, pod, dns, loadbalancer, loss, unexplained."""
    place: str
    """`east<->west`, `west/west-node-1`, `west/kube-system/kube-dns-lb`..."""
    summary: str
    covered: tuple[Seen, ...] = field(repr=False)

    @property
    def checks(self) -> dict[str, int]:
        """check id -> failed cases of it this finding covers."""
        counts: dict[str, int] = {}
        for seen in self.covered:
            counts[seen.check] = counts.get(seen.check, 0) + 1
        return counts

    def line(self) -> str:
        spread = ", ".join(f"{k} {v}" for k, v in sorted(self.checks.items()))
        return f"{self.summary} [{len(self.covered)} failed case(s): {spread}]"


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]

    @property
    def explained(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.component != "unexplained")

    def covering(self, cases: Iterable[Case]) -> list[Finding]:
        """The explained findings that cover any of `cases` (by identity), in order."""
        wanted = {id(c) for c in cases}
        return [f for f in self.explained if any(id(s.case) in wanted for s in f.covered)]

    def lines(self) -> list[str]:
        if not self.findings:
            return ["no failure to explain"]
        return [f"{n}. {f.line()}" for n, f in enumerate(self.findings, 1)]


Scope = Callable[[Seen], str | None]
"""A candidate's key of a case (None: outside every candidate of that kind)."""
Words = Callable[[str, Sequence[Seen]], str]
"""What a candidate says: its key and the failures it covers."""


def _every_one_failed(cases: Sequence[Seen]) -> bool:
    """Nothing in its scope got through: a single pass contradicts it."""
    return all(s.failed for s in cases)


@dataclass(frozen=True)
class Candidate:
    """One kind of explanation: which cases are in its scope (per key), when the key
    explains them (`holds` over the key's path-needing cases), and what it covers."""

    component: str
    scope: Scope
    words: Words
    holds: Callable[[Sequence[Seen]], bool] = _every_one_failed
    covers: Callable[[Seen], bool] = lambda _s: True


def _always(_cases: Sequence[Seen]) -> bool:
    """Its evidence is elsewhere (the policy oracle's own verdicts), not in its scope."""
    return True


ENDPOINTS_FACT = "endpoints"
"""The protocol of a fact case a check adds for a Service it read with no ready endpoint
(suites/services/test_user_services.py): the API's word, beside what the probes saw."""


def _without_endpoints(cases: Sequence[Seen]) -> bool:
    """Every case to the Service failed, and either every source was refused (it exists and
    answers with a reset: no endpoint), or the API said it has no ready endpoint (a cloud
    load balancer with no healthy target drops, where kube-proxy refuses)."""
    if not all(s.failed for s in cases):
        return False
    said = any(s.case.protocol == ENDPOINTS_FACT for s in cases)
    return said or all(s.case.observed.verdict == Verdict.REFUSED for s in cases)


def _to_several(cases: Sequence[Seen]) -> bool:
    """A node's pods fail to several destinations (one destination is that destination's
    story, not the node's)."""
    names = {s.case.destination.name.split(".")[0] for s in cases}
    return _every_one_failed(cases) and len(names) > 1


def _from_several(cases: Sequence[Seen]) -> bool:
    """A node's pods fail from several source nodes (one source is that source's story)."""
    sources = {(s.case.source.cluster, s.case.source.node) for s in cases}
    return _every_one_failed(cases) and len(sources) > 1


def _lossy(cases: Sequence[Seen]) -> bool:
    """Pings lost (some answered) where other probes get through: a lossy link, whose lost
    packets also time out the odd connect on the same path."""
    return any(_lost(s) for s in cases) and any(not s.failed for s in cases)


def _lost(s: Seen) -> bool:
    return s.case.observed.verdict == Verdict.LOSS
