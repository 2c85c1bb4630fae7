"""The kubernetes plugin's records, read from one cluster's API objects.

`<svc>.<ns>.svc.<zone>` A: the ClusterIP, or for a headless Service its ready endpoint
addresses; `_<port>._<proto>.<svc>.<ns>.svc.<zone>` SRV for named ports (a headless Service
answers one target per endpoint, `<ip-dashed>.<svc>.<ns>.svc.<zone>`); `<a-b-c-d>.<ns>.pod.
<zone>` A (`pods insecure`: any well-formed address; `verified`: only a pod that has it).
A name that exists without the asked type answers NOERROR with no data; anything else in the
zone is NXDOMAIN, as CoreDNS answers (both with the zone's SOA in the authority section).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Lister = Callable[[str], list[dict[str, Any]]]
"""Objects of one kind in the cluster (`list("Service")`)."""


@dataclass(frozen=True)
class Records:
    """What the plugin answers for one name: records by type, or that it does not exist."""

    exists: bool
    a: tuple[str, ...] = ()
    srv: tuple[tuple[int, str], ...] = ()
    """(port, target) pairs; priority 0 and weight derived as CoreDNS does."""
    cname: str = ""
    extra: tuple[tuple[str, str], ...] = ()
    """Additional A records (name, address) for SRV targets."""


NOT_FOUND = Records(False)


def lookup(name: str, zone: str, pods_mode: str, objects: Lister) -> Records:
    """The records of `name` (absolute, lowercase) in the kubernetes `zone`."""
    if name == zone:
        return Records(True)
    labels = name[: -len(zone) - 1].split(".")[::-1]  # from the zone inwards: svc, ns, name
    if labels[0] == "svc":
        return _service(labels[1:], zone, objects)
    if labels[0] == "pod":
        return _pod(labels[1:], pods_mode, objects)
    return NOT_FOUND


def _service(labels: list[str], zone: str, objects: Lister) -> Records:
    if len(labels) < 2:
        known = {s["metadata"]["namespace"] for s in objects("Service")}
        return Records(not labels or labels[0] in known)
    ns, svc_name, rest = labels[0], labels[1], labels[2:]
    svc = next(
        (
            s
            for s in objects("Service")
            if (s["metadata"]["namespace"], s["metadata"]["name"]) == (ns, svc_name)
        ),
        None,
    )
    if svc is None:
        return NOT_FOUND
    base = f"{svc_name}.{ns}.svc.{zone}"
    addresses = _ready_addresses(objects, ns, svc_name)
    spec = svc["spec"]
    headless = spec.get("clusterIP") == "None"
    if spec.get("type") == "ExternalName":
        return (
            Records(True, cname=spec["externalName"].rstrip(".") + ".") if not rest else NOT_FOUND
        )
    if not rest:
        a = tuple(addresses) if headless else (spec["clusterIP"],)
        return Records(
            True,
            a=a,
            srv=_srv_all(spec, base, addresses, headless),
            extra=_extra(base, addresses, headless),
        )
    if len(rest) == 1 and headless:  # <ip-dashed>.<svc>... an endpoint of a headless Service
        ip = rest[0].replace("-", ".")
        return Records(True, a=(ip,)) if ip in addresses else NOT_FOUND
    if len(rest) == 2 and rest[0].startswith("_") and rest[1].startswith("_"):
        proto, port_name = rest[0][1:], rest[1][1:]
        ports = [
            p
            for p in spec.get("ports", [])
            if p.get("name") == port_name and p.get("protocol", "TCP").lower() == proto
        ]
        if not ports:
            return NOT_FOUND
        return Records(
            True,
            srv=_srv(ports[0]["port"], base, addresses, headless),
            extra=_extra(base, addresses, headless),
        )
    return NOT_FOUND


def _srv(port: int, base: str, addresses: list[str], headless: bool) -> tuple[tuple[int, str], ...]:
    if not headless:
        return ((port, base),)
    return tuple((port, f"{ip.replace('.', '-')}.{base}") for ip in addresses)


def _srv_all(
    spec: dict[str, Any], base: str, addresses: list[str], headless: bool
) -> tuple[tuple[int, str], ...]:
    records: list[tuple[int, str]] = []
    for port in spec.get("ports", []):
        records += _srv(port["port"], base, addresses, headless)
    return tuple(records)


def _extra(base: str, addresses: list[str], headless: bool) -> tuple[tuple[str, str], ...]:
    if not headless:
        return ()
    return tuple((f"{ip.replace('.', '-')}.{base}", ip) for ip in addresses)


def _ready_addresses(objects: Lister, ns: str, name: str) -> list[str]:
    for eps in objects("Endpoints"):
        if (eps["metadata"]["namespace"], eps["metadata"]["name"]) == (ns, name):
            return sorted(
                {a["ip"] for s in eps.get("subsets") or [] for a in s.get("addresses") or []}
            )
    return []


def _pod(labels: list[str], pods_mode: str, objects: Lister) -> Records:
    if pods_mode == "disabled" or len(labels) != 2:
        return Records(len(labels) == 1 and pods_mode != "disabled")
    ns, dashed = labels
    ip = dashed.replace("-", ".")
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        return NOT_FOUND
    if pods_mode == "verified":
        found = any(
            p["metadata"]["namespace"] == ns and (p.get("status") or {}).get("podIP") == ip
            for p in objects("Pod")
        )
        if not found:
            return NOT_FOUND
    return Records(True, a=(ip,))
