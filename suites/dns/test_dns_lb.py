"""Seed 000's DNS exposure: every cluster's DNS behind the `kube-dns-lb` LoadBalancer, and
every other cluster forwarding that cluster's zone to it.

- **stub audit** (read from the ConfigMaps, no traffic), one case per (cluster, peer zone),
  ids like `east:west.svc.cluster.local`: the peer zone has a stub (Corefile server block of
  the `coredns` ConfigMap, or `stubDomains` of the legacy `kube-dns` one), no stub points at the
  cluster's own DNS (its kube-dns ClusterIP, pods or LB: a loop), and the targets are exactly
  the peer's live `kube-dns-lb` addresses.
- **the DNS LBs answer** (`dig @<LB address>`): each answers for its own zone and refuses
  recursion for an unrelated name (not an open resolver). `kube-dns-lb` is internal in seed
  000 (the cloud annotations): the world cannot reach it by design, so it is asked from a probe
  pod of every other region (where the stubs ask it from), and the runner (the world) checks
  it gets NO answer. An LB without the internal annotations is asked from the runner instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from fixtures.checks import Verify
from fixtures.plugin import STATE, Label, Once, RegionName
from netconform.check import Check, Environment, load_manifests
from netconform.checks.dns import UNRELATED, NoAnswer, NotRecursive, latency, lb_cause, zone_of
from netconform.cluster import ClusterClient
from netconform.corefile import CorefileError, parse_corefile, parse_stub_domains
from netconform.dnsglue import INTERNAL, LB_NAME, SYSTEM
from netconform.outcomes import RUNNER, Answer, Endpoint, Outcome, Verdict, dns_name
from netconform.probes import Probe
from netconform.result import destination_cluster
from netconform.scenario import Scenario
from netconform.topology import Topology

ECHO = load_manifests(Path(__file__).with_name("echo.yaml"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = metafunc.config.stash.get(STATE, None)
    if state is None or "stub_key" not in metafunc.fixturenames:
        return
    topology = state.load_topology()
    keys = [
        f"{c.name}:{zone_of(o)}" for c in topology.clusters for o in topology.clusters if o != c
    ]
    metafunc.parametrize("stub_key", [Label(k) for k in keys], ids=keys)


# -- the stub audit ---------------------------------------------------------------------------


def _get(client: ClusterClient, kind: str, name: str) -> Any | None:
    return next((o for o in client.objects(kind, SYSTEM) if o.metadata.name == name), None)


def lb_addresses(client: ClusterClient) -> list[str]:
    svc = _get(client, "Service", LB_NAME)
    ingress = (svc.status.load_balancer.ingress or []) if svc and svc.status else []
    return sorted(i.ip for i in ingress if i.ip)


def own_dns(client: ClusterClient) -> set[str]:
    """Every address of this cluster's own DNS: kube-dns ClusterIP, its pods, its LB."""
    svc = _get(client, "Service", "kube-dns")
    eps = _get(client, "Endpoints", "kube-dns")
    pods = {a.ip for s in (eps.subsets or [] if eps else []) for a in s.addresses or []}
    return {*([svc.spec.cluster_ip] if svc else []), *pods, *lb_addresses(client)}


def stubs(client: ClusterClient) -> tuple[dict[str, list[str]], str]:
    """zone -> forward targets (without ports), and where they were read."""
    found: dict[str, list[str]] = {}
    for cm, key, parse in (
        ("kube-dns", "stubDomains", parse_stub_domains),
        ("coredns", "Corefile", parse_corefile),  # a zone in both: the Corefile's block
    ):
        text = ((getattr(_get(client, "ConfigMap", cm), "data", None)) or {}).get(key)
        if text is None:
            continue
        try:
            blocks = parse(text)
        except CorefileError as err:
            return {}, f"ConfigMap {SYSTEM}/{cm} {key} does not parse: {err}"
        for b in blocks:
            if b.forward and b.zone != ".":
                found[b.zone.rstrip(".")] = [t.split(":")[0] for t in b.forward]
    return found, f"ConfigMap {SYSTEM}/coredns Corefile or {SYSTEM}/kube-dns stubDomains"


def audit(topology: Topology, clusters: Mapping[str, ClusterClient]) -> dict[str, str]:
    """`east:west.svc.cluster.local` -> what is wrong ("" when the stub is right)."""
    live = {c.name: lb_addresses(clusters[c.name]) for c in topology.clusters}
    found: dict[str, str] = {}
    for cluster in topology.clusters:
        client = clusters[cluster.name]
        zones, where = stubs(client)
        own = own_dns(client)
        for other in (o for o in topology.clusters if o != cluster):
            zone, want = zone_of(other), live[other.name]
            targets = zones.get(zone, [])
            prefix = f"{cluster.name}: stub {zone}"
            if not targets:
                problem = f"{cluster.name}: no stub for {zone} in {where}"
            elif own & set(targets):
                loop = ", ".join(sorted(own & set(targets)))
                problem = f"{prefix} forwards to {cluster.name}'s own DNS {loop} (a loop)"
            elif not want:
                problem = f"{prefix}: {other.name} has no {SYSTEM}/{LB_NAME} address to expect"
            elif sorted(targets) != want:
                problem = (
                    f"{prefix} forwards to {', '.join(targets)}; expected {other.name}'s "
                    f"{SYSTEM}/{LB_NAME} address {', '.join(want)}"
                )
            else:
                problem = ""
            found[f"{cluster.name}:{zone}"] = problem
    return found


def test_dns_stub_audit(
    stub_key: Label, topology: Topology, clusters: dict[str, ClusterClient], once: Once
) -> None:
    problems = once("dns-stub-audit", lambda: audit(topology, clusters))
    if problems[str(stub_key)]:
        pytest.fail(f"{stub_key}: {problems[str(stub_key)]}", pytrace=False)


# -- the DNS load balancers answer ------------------------------------------------------------


def is_internal(svc: Any) -> bool:
    annotations = svc.metadata.annotations or {}
    return any(str(annotations.get(k, "")).lower() == v.lower() for k, v in INTERNAL.items())


def lbs(env: Environment) -> Scenario:
    """Every cluster's kube-dns-lb, asked from where it should answer and where it must not."""
    env.apply_all(ECHO)
    pods = env.probe_pods()
    addresses: dict[str, str] = {}
    askers: dict[str, set[Endpoint]] = {}
    expected: dict[tuple[str, str], Outcome] = {}  # (asking vantage, name), read from the API
    destinations: list[Endpoint] = []
    for cluster, client in env.clusters.items():
        svc, addrs = _get(client, "Service", LB_NAME), lb_addresses(client)
        if svc is None or not addrs:
            continue
        addresses[cluster] = addrs[0]
        ns = env.topology.cluster(cluster).namespace
        own = dns_name(cluster, f"echo.{ns}.svc.cluster.local")
        unrelated = dns_name(cluster, UNRELATED)
        destinations += [own, unrelated]
        ip = env.service(cluster, "echo", ready=2).ip
        inside = [p[0] for c, p in pods.items() if c != cluster and p]
        for src in inside if is_internal(svc) else [RUNNER]:
            expected[(src.label, own.name)] = Answer(Verdict.ALLOW, (ip,))
            expected[(src.label, unrelated.name)] = NotRecursive(Verdict.REFUSED)
        if is_internal(svc):
            expected[(RUNNER.label, own.name)] = NoAnswer(Verdict.TIMEOUT)
        askers[cluster] = {*inside, RUNNER}

    def include(src: Endpoint, dst: Endpoint) -> bool:
        return (src.label, dst.name) in expected and src in askers.get(dst.cluster, set())

    def probes_of(dst: Endpoint) -> list[Probe]:
        return [Probe("dns", params=(("server", addresses[dst.cluster]),))]

    return env.scenario(
        dict.fromkeys([RUNNER, *(p for group in askers.values() for p in group)]),
        destinations,
        [],
        include=include,
        probes_of=probes_of,
        expect=lambda src, dst, _probe: expected[(src.label, dst.name)],
    )


LB_CHECK = Check(
    "dns-lb",
    __doc__ or "",
    lbs,
    slice_by=destination_cluster,
    param="region",
    cause=lb_cause,
    tables=latency,
    converges=True,
)


def test_dns_load_balancer(region: RegionName, verify: Verify) -> None:
    verify(LB_CHECK, region)
