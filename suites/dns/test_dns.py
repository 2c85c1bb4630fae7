"""Cluster DNS: from every probe pod, its own cluster's names (Service A, headless A, SRV for a
named port, its own pod record, NXDOMAIN for a made-up name) and every other region's headless
echo Service through the stub domains (seed 000: each cluster forwards `<region>.svc.cluster.
local` to that region's DNS). Expected answers are read from the API: ClusterIPs, ready pod IPs.
"""

from __future__ import annotations

from pathlib import Path

from fixtures.checks import Verify
from fixtures.plugin import RegionPair
from netconform.check import Check, Environment, Table, load_manifests
from netconform.dnsreport import LATENCY_HEADER, clusters_dns_cause, latency_rows
from netconform.outcomes import NXDOMAIN, Answer, Endpoint, Outcome, Verdict, dns_name
from netconform.probes import Probe
from netconform.profiles import one_pair_per_region_pair
from netconform.result import Result
from netconform.scenario import Scenario
from netconform.topology import Topology

ECHO = load_manifests(Path(__file__).with_name("echo.yaml"))
ZONE = "svc.cluster.local"
MADE_UP = "no-such-service-e7f3"


def _pod_ips(env: Environment, cluster: str, service: str) -> tuple[str, ...]:
    namespace = env.topology.cluster(cluster).namespace
    eps = [
        e
        for e in env.clusters[cluster].objects("Endpoints", namespace)
        if e.metadata.name == service
    ]
    return tuple(
        sorted(a.ip for s in (eps[0].subsets or [] if eps else []) for a in s.addresses or [])
    )


def names(env: Environment) -> Scenario:
    """Every probe pod asks its cluster's DNS (resolv.conf) for own and other regions' names."""
    env.apply_all(ECHO)
    pods = env.sources()
    expected: dict[str, Outcome] = {}
    destinations: list[Endpoint] = []
    for cluster in env.clusters:
        ns = env.topology.cluster(cluster).namespace
        service = env.service(cluster, "echo", ready=2)
        headless = _pod_ips(env, cluster, "echo-pods")
        own = [
            (dns_name(cluster, f"echo.{ns}.{ZONE}"), Answer(Verdict.ALLOW, (service.ip,))),
            (dns_name(cluster, f"echo-pods.{ns}.{ZONE}"), Answer(Verdict.ALLOW, headless)),
            (dns_name(cluster, f"_http._tcp.echo.{ns}.{ZONE}", "SRV"), Answer(Verdict.ALLOW)),
            (dns_name(cluster, f"{MADE_UP}.{ns}.{ZONE}"), NXDOMAIN),
        ]
        for endpoint, outcome in own:
            expected[endpoint.name] = outcome
            destinations.append(endpoint)
    for pod in pods:
        ns = env.topology.cluster(pod.cluster).namespace
        record = dns_name(pod.cluster, f"{pod.ip.replace('.', '-')}.{ns}.pod.cluster.local")
        expected[record.name] = Answer(Verdict.ALLOW, (pod.ip,))
        destinations.append(record)

    def include(src: Endpoint, dst: Endpoint) -> bool:
        if ".pod.cluster.local" in dst.name:
            return dst.name.startswith(src.ip.replace(".", "-") + ".")
        return src.cluster == dst.cluster or dst.name.startswith("echo-pods.")

    return env.scenario(
        pods,
        destinations,
        [Probe("dns")],
        include=include,
        expect=lambda _src, dst, _probe: expected[dst.name],  # the answers read from the API
        explain=lambda cases: clusters_dns_cause(cases, env.clusters),
    )


def latency(result: Result, topology: Topology) -> list[Table]:
    """dig's query time through each pod's resolv.conf, per (asking, answering) cluster."""
    rows, bad = latency_rows(result.cases, [str(n) for n in topology.names])
    return [Table("dns resolution latency per region pair (dig)", LATENCY_HEADER, rows, bad)]


CHECK = Check(
    "dns",
    __doc__ or "",
    names,
    converges=True,
    param="region_pair",
    tables=latency,
    smoke=one_pair_per_region_pair,  # one name per zone, from one pod per cluster
)


def test_dns(region_pair: RegionPair, verify: Verify) -> None:
    verify(CHECK, region_pair)
