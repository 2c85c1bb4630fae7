"""Flat pod networking keeps the source address: an echo answers with the client address it
saw (the lab's echo JSON `client`; agnhost netexec `/clientip` answers `ip:port`), and across
regions that must be the source pod's own IP (seed 000 reaches pods directly by their IPs).

Source NAT on the path (the AWS VPC CNI's default SNAT for traffic leaving the VPC, AKS
kubenet, a masquerading gateway) shows as another address; it is reported with the address
seen and what breaks with it: NetworkPolicy ipBlock peers on pod CIDRs no longer match."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from netconform.outcomes import Case, Endpoint, HttpStatus, Outcome, Verdict
from netconform.reachability import likely_cause, relation
from netconform.result import Result
from netconform.scenario import Oracle, Scenario

#: agnhost netexec's endpoint answering `ip:port` of the client (the lab's echo answers any path)
CLIENT_IP_PATH = "/clientip"


@dataclass(frozen=True)
class ClientAddress(Outcome):
    """The source address the destination saw."""

    address: str = ""

    def satisfied_by(self, observed: Outcome) -> bool:
        return isinstance(observed, ClientAddress) and observed.address == self.address

    def __str__(self) -> str:
        return f"CLIENT {self.address or '?'}"


def source_kept(src: Endpoint, _dst: Endpoint, _probe: object) -> Outcome:
    """The oracle: the destination sees the source pod's own IP."""
    return ClientAddress(Verdict.ALLOW, src.ip)


def with_cni_notes(notes: Mapping[str, str]) -> Callable[[Endpoint, Endpoint], str]:
    """A case's context: how the pods relate, and the source cluster's CNI SNAT settings
    (`notes`: cluster -> `netconform.cni.read_aws_node`, "" where none)."""

    def context(src: Endpoint, dst: Endpoint) -> str:
        return "; ".join(filter(None, (relation(src, dst), notes.get(src.cluster, ""))))

    return context


def seen_address(body: str) -> str:
    """The client address in an echo's first body line: JSON `client`, or `ip:port`."""
    text = body.strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return str(data.get("client") or "")
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit():
        return host.strip("[]")
    return text if text and " " not in text else ""


def judge_source(_scenario: Scenario, _oracle: Oracle, result: Result) -> Result:
    """Each answered HTTP case observed as the client address its echo saw."""
    return Result(tuple(_as_client(c) for c in result.cases))


def _as_client(case: Case) -> Case:
    if not isinstance(case.observed, HttpStatus) or case.observed.verdict != Verdict.ALLOW:
        return case
    seen = seen_address(case.observed.body)
    observed = ClientAddress(Verdict.ALLOW, seen)
    note = f"the echo saw {seen or 'no address in ' + repr(case.observed.body[:80])}"
    return replace(case, observed=observed, detail=f"{case.detail}; {note}")


#: the prefix of a source cluster's CNI note in a case's detail (netconform.cni)
CNI_NOTE = "aws-node DaemonSet"
_CNI = re.compile(re.escape(CNI_NOTE) + r" \[[^\]]*\]")


def snat_cause(cases: Sequence[Case]) -> str:
    """Source NAT on the path, with the addresses seen and what breaks; the source
    clusters' CNI settings when their cases' details carry them."""
    natted = [c for c in cases if not c.passed and isinstance(c.observed, ClientAddress)
              and c.observed.address]  # fmt: skip
    if not natted:
        return ""
    seen = sorted({f"{c.source.cluster}->{c.destination.cluster} seen as {c.observed}"
                   for c in natted})  # fmt: skip
    text = (
        f"source NAT on the path ({'; '.join(seen)}): the destination sees another address "
        "than the source pod's; NetworkPolicy ipBlock peers on pod CIDRs no longer match "
        "these sources, and logs and firewalls see the NAT address"
    )
    notes = sorted({m.group(0) for c in natted for m in _CNI.finditer(c.detail)})
    return text + (f"; {'; '.join(notes)}" if notes else "")


def source_cause(cases: Sequence[Case]) -> str:
    """Source NAT where echoes answered with another address; an echo that answered without
    naming one (the path works there); the shape of the failures where no echo answered."""
    failed = [c for c in cases if not c.passed]
    answered = [c for c in failed if isinstance(c.observed, ClientAddress)]
    unnamed = sorted({f"{c.source.cluster}->{c.destination.cluster}" for c in answered
                      if not c.observed.address})  # type: ignore[attr-defined]  # fmt: skip
    parts = [snat_cause(cases)]
    if unnamed:
        parts.append(
            f"the echo pods answered ({', '.join(unnamed)}) without naming the client address "
            "they saw: the echo's image or its path, not the network (the request got through)"
        )
    if len(answered) < len(failed):
        parts.append(likely_cause([c for c in cases if c not in answered]))
    return "; ".join(p for p in parts if p)
