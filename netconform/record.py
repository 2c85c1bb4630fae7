"""A case as a run records it: an id stable across runs, and the numbers it carries.

The id names the ends by cluster and name, never by address (pod IPs change from run to run),
so two runs' outcome files can be matched case by case. The numbers come from every layer
that knows some, generically: the observed outcome (`Outcome.numbers`: an MTU, a share and its
interval, a certificate's expiry), the ping statistics (loss, RTTs) and the probe kind's own
reading of its tool's output (`ProbeKind.numbers`: dig's query time, curl's connect time).
A new outcome type or probe kind brings its numbers by overriding those methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netconform.outcomes import Case, Endpoint
from netconform.probes.base import kind


def endpoint_id(endpoint: Endpoint, source: Endpoint | None = None) -> str:
    """`east/probe-0-0`, `west/west/echo:service`, `runner`: no address in it. A name that
    embeds the source's address (a pod's own DNS record) has it replaced by `<source-ip>`."""
    if endpoint.kind == "runner":
        return endpoint.name
    name = endpoint.name
    if source is not None and source.ip and source.kind == "pod":
        name = name.replace(source.ip.replace(".", "-"), "<source-ip>")
        name = name.replace(source.ip, "<source-ip>")
    where = f"{endpoint.cluster}/" if endpoint.cluster else ""
    suffix = "" if endpoint.kind == "pod" else f":{endpoint.kind}"
    if endpoint.kind == "nodeport" and endpoint.node:
        suffix += f"@{endpoint.node}"
    if endpoint.record and endpoint.record != "A":
        suffix += f"/{endpoint.record}"
    return f"{where}{name}{suffix}"


def case_id(case: Case, slice_key: str) -> str:
    """`east->west: east/probe-0-0 -> west/probe-1-0:8080 tcp`: unique within a check."""
    port = f":{case.port}" if case.port else ""
    src = endpoint_id(case.source)
    dst = endpoint_id(case.destination, case.source)
    return f"{slice_key}: {src} -> {dst}{port} {case.protocol}"


def pair_of(case: Case) -> str:
    """The region pair a case's numbers are pooled under: `east->west`, `runner->west`."""
    src = case.source.cluster or case.source.name
    dst = case.destination.cluster or case.destination.name
    return f"{src}->{dst}"


@dataclass(frozen=True)
class CaseNumbers:
    """What a case measured, as numbers."""

    numbers: dict[str, float] = field(default_factory=dict)
    """One value per name: `loss`, `rtt_avg`, `mtu`, `share`, `dns_ms`, `connect_ms`..."""
    samples: dict[str, list[float]] = field(default_factory=dict)
    """Several values per name, one per event: `rtt_ms` for every answered echo."""
    starved: bool = False
    """Timings were taken on a node starved of CPU: kept, but not judged for drift."""


def case_numbers(case: Case) -> CaseNumbers:
    """Every number the case carries, from its outcome, its pings and its tool's output."""
    numbers = dict(case.observed.numbers())
    samples: dict[str, list[float]] = {}
    starved = case.starved
    if case.ping is not None:
        numbers.update(case.ping.numbers())
        if case.ping.rtts:
            samples["rtt_ms"] = [float(v) for v in case.ping.rtts]
        starved = starved or case.ping.starved
    if case.raw is not None:
        try:
            probe_kind = kind(case.protocol)
        except ValueError:  # a protocol no registered kind owns (a check's own)
            probe_kind = None
        if probe_kind is not None:
            numbers.update(probe_kind.numbers(case.raw, case.observed))
    return CaseNumbers(numbers, samples, starved)
