"""DNS resolution latency per region pair, from dig's own `;; Query time:` of each case."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from netconform.cluster import ClusterClient
from netconform.outcomes import Case
from netconform.probes.dns import query_time_ms

LATENCY_HEADER = ("from", "zone of", "lookups", "median ms", "max ms", "failed")


def latency_rows(
    cases: Sequence[Case], regions: Sequence[str]
) -> tuple[tuple[tuple[object, ...], ...], tuple[bool, ...]]:
    """One row per (asking cluster, cluster whose zone was asked) that has dns cases."""
    rows: list[tuple[object, ...]] = []
    bad: list[bool] = []
    for src in regions:
        for dst in regions:
            pair = [
                c
                for c in cases
                if c.protocol == "dns" and c.source.cluster == src and c.destination.cluster == dst
            ]
            if not pair:
                continue
            times = [
                t for t in (query_time_ms(c.raw.stdout) for c in pair if c.raw) if t is not None
            ]
            failed = sum(not c.passed for c in pair)
            median = f"{statistics.median(times):g}" if times else "-"
            rows.append((src, dst, len(pair), median, max(times) if times else "-", failed))
            bad.append(failed > 0)
    return tuple(rows), tuple(bad)


def dns_pod_trouble(cluster: str, client: ClusterClient) -> list[str]:
    """`east: coredns-x not ready: CrashLoopBackOff: [FATAL] plugin/loop: Loop ... detected`."""
    found = []
    for pod in client.objects("Pod", "kube-system", "k8s-app=kube-dns"):
        for status in (pod.status.container_statuses or []) if pod.status else []:
            if status.ready:
                continue
            waiting = status.state.waiting if status.state else None
            why = f"{waiting.reason}: {waiting.message}" if waiting else "not ready"
            found.append(f"{cluster}: kube-system/{pod.metadata.name} not ready: {why}")
    return found


def dns_cause(cases: Sequence[Case], trouble: Sequence[str] = ()) -> str:
    """Which cluster's DNS fails for which zone; the cluster every failed pair involves; the
    DNS pods that are not ready (a loop the loop plugin halted names itself there).

    A zone that another cluster's pods resolve is not blamed on its own DNS pods or load
    balancer (they answer): the failing clusters' path to it, or their stub, is."""
    failed = [c for c in cases if not c.passed]
    if not failed:
        return ""
    sources = sorted({c.source.cluster for c in failed})
    zones = sorted({_zone(c) for c in failed})
    text = f"DNS of {', '.join(sources)} fails for {', '.join(zones)}"
    answered = _answered_elsewhere(cases, failed)
    if answered:
        detail = "; ".join(f"{zone} resolves from {', '.join(by)}" for zone, by in answered)
        return "; ".join([
            f"{text}; {detail}: that zone's DNS answers, so the path from the failing "
            "clusters to its DNS load balancer, or their stub domain for it (ConfigMap "
            "kube-system/coredns Corefile), drops the lookups",
            *trouble,
        ])  # fmt: skip
    pairs = [{c.source.cluster, c.destination.cluster} for c in failed]
    common = sorted(set.intersection(*pairs))
    if len(common) == 1 and len(sources) > 1:
        text += f"; every failed lookup involves {common[0]}'s DNS (asked, or its zone asked)"
    text += (
        ": check that cluster's kube-dns pods (kube-system), its Service kube-dns-lb, and the "
        "stub domain for the zone (ConfigMap kube-system/coredns Corefile or kube-dns "
        "stubDomains) and its target"
    )
    return "; ".join([text, *trouble])


def _zone(case: Case) -> str:
    return ".".join(case.destination.name.split(".")[-4:])


def _answered_elsewhere(
    cases: Sequence[Case], failed: Sequence[Case]
) -> list[tuple[str, list[str]]]:
    """Failing zones (asked from another cluster whose own DNS answers its own names) that
    pods of a third cluster resolved. An asker whose own names fail too is its own DNS's
    story, not the path's."""
    broken = {c.source.cluster for c in failed if c.source.cluster == c.destination.cluster}
    found = []
    for zone in sorted({_zone(c) for c in failed if c.source.cluster != c.destination.cluster
                        and c.source.cluster not in broken}):  # fmt: skip
        askers = {c.source.cluster for c in failed if _zone(c) == zone}
        by = sorted({c.source.cluster for c in cases if c.passed and _zone(c) == zone
                     and c.source.cluster not in askers
                     and c.source.cluster != c.destination.cluster})  # fmt: skip
        if by:
            found.append((zone, by))
    return found


def clusters_dns_cause(cases: Sequence[Case], clusters: Mapping[str, ClusterClient]) -> str:
    """`dns_cause` with the DNS pods of every cluster read now (only once something failed):
    a scenario's `explain`, computed with the measurement."""
    if all(c.passed for c in cases):
        return ""
    trouble = [t for name, client in clusters.items() for t in dns_pod_trouble(name, client)]
    return dns_cause(cases, trouble)
