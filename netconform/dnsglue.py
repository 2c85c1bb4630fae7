"""Seed 000's DNS glue as code (the engine of `netconform-kube plan|apply`).

Per cluster: the `kube-dns-lb` LoadBalancer Service in kube-system (internal, the usual AWS,
GCP and Azure annotations), a wait for its address (named timeout `lb_ready`, a progress
line), then stub domains for every OTHER cluster's zone -> that cluster's DNS address, never
its own. CoreDNS clusters (a `coredns` ConfigMap) get Corefile server blocks; kube-dns
clusters get `stubDomains`. Idempotent: a second apply reports no changes.

`mode` `pods` (flat pod networks without LoadBalancers): a cluster's DNS address is its ready
kube-dns endpoints (pod IPs, flat-routed across peered VPCs) instead of the LB's. Here, below
both the CLI (`provisioning.kube`) and the lab (which seeds its stubs the same way), so that
neither imports the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TextIO

from netconform.cluster import ClusterClient
from netconform.corefile import CorefileError, parse_corefile, parse_stub_domains
from netconform.errors import DnsConfigError
from netconform.topology import Cluster, Topology
from netconform.waits import wait_until

SYSTEM = "kube-system"
LB_NAME = "kube-dns-lb"
LB_READY = 120.0
INTERNAL = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "networking.gke.io/load-balancer-type": "Internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
}


@dataclass(frozen=True)
class Change:
    cluster: str
    what: str
    """`create Service kube-system/kube-dns-lb`, `set stub west.svc.cluster.local -> ...`."""
    manifest: dict[str, Any] | None = None


def lb_manifest() -> dict[str, Any]:
    """seed 000's dns-lb.yaml: kube-dns behind an internal LoadBalancer."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": LB_NAME, "namespace": SYSTEM, "annotations": dict(INTERNAL)},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"k8s-app": "kube-dns"},
            "ports": [
                {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "targetPort": 53, "protocol": "TCP"},
            ],
        },
    }


def _find(client: ClusterClient, kind: str, name: str) -> Any | None:
    return next((o for o in client.objects(kind, SYSTEM) if o.metadata.name == name), None)


def dns_address(client: ClusterClient, mode: str, timeout: float, out: TextIO) -> list[str]:
    """The addresses other clusters forward this cluster's zone to."""
    name = client.cluster.name
    if mode == "pods":

        def ready() -> list[str] | None:
            eps = _find(client, "Endpoints", "kube-dns")
            subsets = (eps.subsets or []) if eps else []
            return sorted(a.ip for s in subsets for a in s.addresses or []) or None

        return wait_until(
            ready,
            timeout=timeout,
            name="pod_ready",
            interval=0.1,
            describe=lambda: f"{name}: Service {SYSTEM}/kube-dns has no ready endpoints",
        )
    print(f"{name}: waiting for Service {SYSTEM}/{LB_NAME} to get an address ...", file=out)

    def address() -> list[str] | None:
        svc = _find(client, "Service", LB_NAME)
        ingress = (svc.status.load_balancer.ingress or []) if svc and svc.status else []
        return [i.ip for i in ingress if i.ip] or None

    return wait_until(
        address,
        timeout=timeout,
        name="lb_ready",
        interval=0.2,
        describe=lambda: (
            f"{name}: Service {SYSTEM}/{LB_NAME} has no "
            "EXTERNAL-IP (status.loadBalancer.ingress is empty)"
        ),
    )


def stub_blocks(stubs: dict[str, list[str]]) -> str:
    """CoreDNS server blocks for stubs, as SEMANTICS.md "CoreDNS stubs" writes them."""
    return "".join(
        f"{zone}:53 {{\n    errors\n    cache 30\n    loop\n    forward . {' '.join(ips)}\n}}\n"
        for zone, ips in sorted(stubs.items())
    )


def split_blocks(text: str) -> list[tuple[str, str]]:
    """(first server key, text) of each top-level block of a Corefile, in order."""
    blocks, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                chunk = text[start : i + 1].strip("\n")
                key = chunk.split("{", 1)[0].split()[0]
                blocks.append((key.removeprefix("dns://").split(":")[0].rstrip("."), chunk))
                start = i + 1
    return blocks


def desired_corefile(text: str, stubs: dict[str, list[str]], managed: set[str]) -> str:
    """The Corefile with every managed zone's block replaced by the wanted stubs."""
    kept = [chunk for key, chunk in split_blocks(text) if key not in managed]
    return "\n".join(kept) + "\n" + stub_blocks(stubs)


def plan_cluster(
    client: ClusterClient, stubs: dict[str, list[str]], managed: set[str]
) -> list[Change]:
    """The ConfigMap change that puts `stubs` in place (none when already there)."""
    name = client.cluster.name
    coredns = _find(client, "ConfigMap", "coredns")
    if coredns is not None:
        text = (coredns.data or {}).get("Corefile", "")
        _parse(name, "coredns", "Corefile", text)
        wanted = desired_corefile(text, stubs, managed)
        if wanted == text:
            return []
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": {**(coredns.data or {}), "Corefile": wanted},
            "metadata": {"name": "coredns", "namespace": SYSTEM},
        }
        return [Change(name, f"Corefile stubs {_show(stubs)} (ConfigMap {SYSTEM}/coredns)", cm)]
    kube_dns = _find(client, "ConfigMap", "kube-dns")
    current = (kube_dns.data or {}).get("stubDomains", "{}") if kube_dns else "{}"
    _parse(name, "kube-dns", "stubDomains", current)
    merged = {k: v for k, v in json.loads(current).items() if k.rstrip(".") not in managed}
    merged.update(stubs)
    if merged == json.loads(current):
        return []
    data = {
        **((kube_dns.data or {}) if kube_dns else {}),
        "stubDomains": json.dumps(merged, sort_keys=True),
    }
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "data": data,
        "metadata": {"name": "kube-dns", "namespace": SYSTEM},
    }
    return [Change(name, f"stubDomains {_show(stubs)} (ConfigMap {SYSTEM}/kube-dns)", cm)]


def _show(stubs: dict[str, list[str]]) -> str:
    return ", ".join(f"{z} -> {','.join(ips)}" for z, ips in sorted(stubs.items()))


def _parse(cluster: str, cm: str, key: str, text: str) -> None:
    try:
        (parse_corefile if key == "Corefile" else parse_stub_domains)(text)
    except CorefileError as err:
        raise DnsConfigError(f"{cluster}: ConfigMap {SYSTEM}/{cm} {key}: {err}") from None


def run(
    topology: Topology, apply: bool, mode: str, out: TextIO, lb_timeout: float = LB_READY
) -> int:
    clients: dict[str, ClusterClient] = {
        c.name: ClusterClient(c, topology.kubeconfig, topology.timeouts) for c in topology.clusters
    }
    missing = [
        n for n, c in clients.items() if mode == "lb" and _find(c, "Service", LB_NAME) is None
    ]
    for name in missing:
        print(f"{name}: create Service {SYSTEM}/{LB_NAME} (internal LoadBalancer)", file=out)
        if apply:
            clients[name].apply(lb_manifest())
    if missing and not apply:  # no address to plan stubs with until the Services exist
        print("plan: stub domains are planned once the LB addresses exist", file=out)
        return 0
    addresses = {n: dns_address(c, mode, lb_timeout, out) for n, c in clients.items()}
    managed = {_zone(c) for c in topology.clusters}
    changes: list[Change] = []
    for cluster in topology.clusters:
        stubs = {_zone(o): addresses[o.name] for o in topology.clusters if o.name != cluster.name}
        changes += plan_cluster(clients[cluster.name], stubs, managed)
    for change in changes:
        print(f"{change.cluster}: {change.what}", file=out)
    if not changes:
        print("no changes", file=out)
    if apply:
        for change in changes:
            assert change.manifest is not None
            clients[change.cluster].apply(change.manifest)
        print(f"applied {len(changes)} change(s)", file=out)
    return 0


def _zone(cluster: Cluster) -> str:
    return (cluster.dns_zone or f"{cluster.namespace}.svc.cluster.local").rstrip(".")
