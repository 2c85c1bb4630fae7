"""The oracle's inputs as frozen values: pods, namespaces and parsed NetworkPolicies.

Everything is read from the JSON the API server returns (camelCase keys, `metadata`, `spec`,
`status`), as plain dicts; nothing here talks to a cluster. Parsing is strict about shapes the
API server itself rejects (an empty peer, ipBlock beside a selector, an unknown operator), so a
malformed fixture fails loudly, naming the policy and the key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netconform.policy import upstream

Labels = tuple[tuple[str, str], ...]
"""Labels as sorted (key, value) pairs, so values holding them stay hashable."""

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PROTOCOLS = ("TCP", "UDP", "SCTP")
"""The protocols a NetworkPolicy port names (default TCP)."""
ICMP = "ICMP"
"""Not a NetworkPolicy protocol: admitted only by rules without ports."""

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""The label the API server puts on every namespace (Kubernetes >= 1.21)."""


def labels(mapping: Mapping[str, str] | None = None, **more: str) -> Labels:
    """Labels from a mapping and/or keywords: `labels({"role": "db"})`, `labels(app="x")`."""
    return tuple(sorted({**(mapping or {}), **more}.items()))


def protocol_of(name: str) -> str:
    """`tcp` -> `TCP`; ICMP is accepted as the pseudo-protocol of ping probes."""
    upper = name.upper()
    if upper not in (*PROTOCOLS, ICMP):
        raise ValueError(f"unknown protocol {name!r} (known: TCP, UDP, SCTP, ICMP)")
    return upper


class PolicyError(ValueError):
    """A NetworkPolicy the API server would not have accepted."""


@dataclass(frozen=True)
class ContainerPort:
    """One port a container declares."""

    port: int
    """containerPort."""
    name: str = ""
    """The port's name ("" when unnamed); named NetworkPolicy ports resolve against it."""
    protocol: str = "TCP"


@dataclass(frozen=True)
class Pod:
    """A pod as the oracle sees it."""

    cluster: str
    namespace: str
    name: str
    ip: str
    """status.podIP ("" while pending: then no ipBlock matches it)."""
    labels: Labels = ()
    ports: tuple[ContainerPort, ...] = ()
    """Every container's declared ports."""

    @property
    def label(self) -> str:
        """`east/stars/backend`: cluster, namespace, name."""
        return f"{self.cluster}/{self.namespace}/{self.name}"

    @classmethod
    def from_api(cls, cluster: str, obj: Mapping[str, Any]) -> Pod:
        meta = obj.get("metadata") or {}
        containers = (obj.get("spec") or {}).get("containers") or []
        ports = tuple(
            ContainerPort(int(p["containerPort"]), p.get("name", ""), p.get("protocol", "TCP"))
            for c in containers
            for p in c.get("ports") or []
        )
        return cls(
            cluster=cluster,
            namespace=meta.get("namespace", "default"),
            name=meta["name"],
            ip=(obj.get("status") or {}).get("podIP", ""),
            labels=labels(meta.get("labels")),
            ports=ports,
        )


@dataclass(frozen=True)
class NamespaceInfo:
    """A namespace and its labels."""

    cluster: str
    name: str
    labels: Labels = ()
    """As given; `kubernetes.io/metadata.name` is added when missing, as the API server does."""

    @property
    def effective_labels(self) -> dict[str, str]:
        return {NAMESPACE_NAME_LABEL: self.name, **dict(self.labels)}

    @classmethod
    def from_api(cls, cluster: str, obj: Mapping[str, Any]) -> NamespaceInfo:
        meta = obj.get("metadata") or {}
        return cls(cluster, meta["name"], labels(meta.get("labels")))


@dataclass(frozen=True)
class Requirement:
    """One matchExpressions entry."""

    key: str
    operator: str
    """In, NotIn, Exists, DoesNotExist."""
    values: tuple[str, ...] = ()

    def matches(self, have: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return have.get(self.key) in self.values
        if self.operator == "NotIn":
            return self.key not in have or have[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in have
        return self.key not in have  # DoesNotExist


@dataclass(frozen=True)
class Selector:
    """A label selector; the empty one selects everything."""

    match_labels: Labels = ()
    expressions: tuple[Requirement, ...] = ()

    def matches(self, have: Mapping[str, str]) -> bool:
        return all(have.get(k) == v for k, v in self.match_labels) and all(
            r.matches(have) for r in self.expressions
        )

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels]
        parts += [f"{r.key} {r.operator} ({','.join(r.values)})" for r in self.expressions]
        return "{" + ", ".join(parts) + "}"


@dataclass(frozen=True)
class IpBlock:
    """A CIDR minus its exceptions."""

    cidr: IPNetwork
    excepted: tuple[IPNetwork, ...] = ()

    def contains(self, ip: str) -> bool:
        return bool(ip) and self.contains_address(ipaddress.ip_address(ip))

    def contains_address(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if addr.version != self.cidr.version or addr not in self.cidr:
            return False
        return not any(addr in e for e in self.excepted)


@dataclass(frozen=True)
class Peer:
    """One from/to entry: selectors (in-cluster pods) or an ipBlock (any address)."""

    pod_selector: Selector | None = None
    """None: every pod of the selected namespaces (as the empty selector)."""
    namespace_selector: Selector | None = None
    """None: the policy's own namespace; empty: every namespace."""
    ip_block: IpBlock | None = None


@dataclass(frozen=True)
class PortRule:
    """One ports entry."""

    protocol: str = "TCP"
    port: int | str | None = None
    """A number, a container port name, or None for every port of the protocol."""
    end_port: int | None = None
    """Inclusive upper bound of a numeric range."""

    def __str__(self) -> str:
        if self.port is None:
            return f"{self.protocol.lower()}/any"
        end = f"-{self.end_port}" if self.end_port is not None else ""
        return f"{self.protocol.lower()}/{self.port}{end}"


@dataclass(frozen=True)
class Rule:
    """One ingress or egress rule; an empty field means "all" (peers or ports)."""

    peers: tuple[Peer, ...] = ()
    ports: tuple[PortRule, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A NetworkPolicy of one cluster, with policyTypes defaulted as the API server does."""

    cluster: str
    namespace: str
    name: str
    pod_selector: Selector = Selector()
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    types: tuple[str, ...] = ("Ingress",)
    """policyTypes: given, or (absent or empty) Ingress plus Egress when egress rules are
    present (`upstream.with_defaults`)."""

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_api(cls, cluster: str, obj: Mapping[str, Any]) -> Policy:
        meta = obj.get("metadata") or {}
        name = meta.get("name", "?")
        namespace = meta.get("namespace", "default")
        where = f"NetworkPolicy {cluster}/{namespace}/{name}"
        spec = upstream.with_defaults(obj.get("spec") or {})
        refused = upstream.refusals(spec)
        if refused:
            raise PolicyError(f"{where}: the API server refuses it: {'; '.join(refused)}")
        ingress = tuple(
            _rule(r, "from", f"{where} spec.ingress[{i}]")
            for i, r in enumerate(spec.get("ingress") or [])
        )
        egress = tuple(
            _rule(r, "to", f"{where} spec.egress[{i}]")
            for i, r in enumerate(spec.get("egress") or [])
        )
        types = spec["policyTypes"]
        return cls(
            cluster=cluster,
            namespace=namespace,
            name=name,
            pod_selector=_selector(spec["podSelector"], f"{where} spec.podSelector"),
            ingress=ingress,
            egress=egress,
            types=tuple(types),
        )


def _selector(obj: Mapping[str, Any], where: str) -> Selector:
    exprs = []
    for i, e in enumerate(obj.get("matchExpressions") or []):
        op = e.get("operator")
        values = tuple(e.get("values") or ())
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise PolicyError(f"{where}.matchExpressions[{i}]: unknown operator {op!r}")
        if op in ("In", "NotIn") and not values:
            raise PolicyError(f"{where}.matchExpressions[{i}]: {op} needs values")
        exprs.append(Requirement(e["key"], op, values))
    return Selector(labels(obj.get("matchLabels")), tuple(exprs))


def _peer(obj: Mapping[str, Any], where: str) -> Peer:
    pods, spaces, block = obj.get("podSelector"), obj.get("namespaceSelector"), obj.get("ipBlock")
    if block is not None:
        if pods is not None or spaces is not None:
            raise PolicyError(f"{where}: ipBlock may not be combined with a selector")
        try:
            cidr = ipaddress.ip_network(block["cidr"], strict=False)
            excepted = tuple(
                ipaddress.ip_network(e, strict=False) for e in block.get("except") or []
            )
        except (KeyError, ValueError) as exc:
            raise PolicyError(f"{where}.ipBlock: {exc}") from exc
        return Peer(ip_block=IpBlock(cidr, excepted))
    if pods is None and spaces is None:
        raise PolicyError(f"{where}: a peer needs podSelector, namespaceSelector or ipBlock")
    return Peer(
        pod_selector=None if pods is None else _selector(pods, f"{where}.podSelector"),
        namespace_selector=(
            None if spaces is None else _selector(spaces, f"{where}.namespaceSelector")
        ),
    )


def _port(obj: Mapping[str, Any], where: str) -> PortRule:
    # defaulted and checked by `upstream`: protocol one of PROTOCOLS, exactly as written (the
    # API server refuses `tcp`); a string port is a name, even "80" (refused as a name)
    port: int | str | None = obj.get("port")
    end = obj.get("endPort")
    return PortRule(str(obj["protocol"]), port, None if end is None else int(end))


def _rule(obj: Mapping[str, Any], peers_key: str, where: str) -> Rule:
    peers: Sequence[Mapping[str, Any]] = obj.get(peers_key) or []
    ports: Iterable[Mapping[str, Any]] = obj.get("ports") or []
    return Rule(
        tuple(_peer(p, f"{where}.{peers_key}[{i}]") for i, p in enumerate(peers)),
        tuple(_port(p, f"{where}.ports[{i}]") for i, p in enumerate(ports)),
    )
