"""A NetworkPolicy spec read as the API server would have stored it: its defaults filled in and
what it would have refused named. The oracle applies both on read, so a policy from a fixture,
a corpus or a lenient API server means what it would mean on a real cluster.

Written for the oracle from upstream's code (kubernetes/kubernetes, learned, not copied), on
its own, apart from the lab's API server (which must not be the oracle's source of truth):
- pkg/apis/networking/v1/defaults.go `SetDefaults_NetworkPolicy`: `len(policyTypes) == 0` ->
  [Ingress], and Egress too when `len(egress) != 0`. So `policyTypes: []` is NOT "no types"
  (a policy isolating nothing) but Ingress, exactly as absent; `egress: []` adds no Egress.
  `SetDefaults_NetworkPolicyPort`: protocol nil -> TCP.
- pkg/apis/networking/validation/validation.go `ValidateNetworkPolicySpec`,
  `ValidateNetworkPolicyPort`, `ValidateNetworkPolicyPeer`, `ValidateIPBlock`, and
  apimachinery's `ValidateLabelSelectorRequirement` (the operator/values rules).
- Absent and empty lists are one thing to Go (`len() == 0`): rules, peers, ports, excepts.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

_TYPES = {"Ingress", "Egress"}
_PROTOCOLS = {"TCP", "UDP", "SCTP"}
_SVC_NAME = re.compile(r"^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")
"""IANA_SVC_NAME (apimachinery `IsValidPortName`): 1-15 of a-z 0-9 -, a letter, no `--`, no
hyphen at either end."""


def with_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `spec` with the API server's defaults filled in."""
    out = copy.deepcopy(dict(spec))
    if not out.get("podSelector"):
        out["podSelector"] = {}
    if len(out.get("policyTypes") or []) == 0:
        out["policyTypes"] = ["Ingress"] + (["Egress"] if len(out.get("egress") or []) else [])
    for _, _, port in _ports(out):
        if port.get("protocol") is None:
            port["protocol"] = "TCP"
    return out


def refusals(spec: Mapping[str, Any]) -> list[str]:
    """Why the API server would answer 422 for this (defaulted) spec: `field: reason` each."""
    found = list(_selector_refusals(spec.get("podSelector"), "spec.podSelector"))
    for where, port_path, port in _ports(spec):
        del where
        found += _port_refusals(port, port_path)
    for path, peer in _peers(spec):
        found += _peer_refusals(peer, path)
    types = list(spec.get("policyTypes") or [])
    if len(types) > 2:
        return [*found, "spec.policyTypes: may not specify more than two policyTypes"]
    found += [
        f"spec.policyTypes[{i}]: {t!r} is neither Ingress nor Egress"
        for i, t in enumerate(types)
        if t not in _TYPES
    ]
    return found


def _rules(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            yield f"spec.{direction}[{i}]", peers_key, rule


def _ports(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for where, _, rule in _rules(spec):
        for j, port in enumerate(rule.get("ports") or []):
            yield where, f"{where}.ports[{j}]", port


def _peers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for where, peers_key, rule in _rules(spec):
        for j, peer in enumerate(rule.get(peers_key) or []):
            yield f"{where}.{peers_key}[{j}]", peer


def _port_refusals(port: Mapping[str, Any], path: str) -> list[str]:
    out = []
    if port.get("protocol") not in _PROTOCOLS:
        out.append(f"{path}.protocol: {port.get('protocol')!r} is not TCP, UDP or SCTP")
    number, end = port.get("port"), port.get("endPort")
    if number is None and end is not None:
        out.append(f"{path}.endPort: needs a port")
    elif isinstance(number, str):
        if not _SVC_NAME.match(number):
            out.append(f"{path}.port: {number!r} is not a valid port name")
        if end is not None:
            out.append(f"{path}.endPort: needs a numeric port")
    elif isinstance(number, int):
        out += [f"{path}.{k}: {v} is outside 1-65535" for k, v in (("port", number),
                ("endPort", end)) if v is not None and not 0 < v < 65536]  # fmt: skip
        if end is not None and end < number:
            out.append(f"{path}.endPort: {end} is below port {number}")
    return out


def _peer_refusals(peer: Mapping[str, Any], path: str) -> list[str]:
    given = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None]
    if not given:
        return [f"{path}: must specify a peer"]
    out = []
    if "ipBlock" in given and len(given) > 1:
        out.append(f"{path}: may not specify both ipBlock and another peer")
    for key in ("podSelector", "namespaceSelector"):
        out += _selector_refusals(peer.get(key), f"{path}.{key}")
    block = peer.get("ipBlock")
    if block is not None:
        out += _block_refusals(block, f"{path}.ipBlock")
    return out


def _cidr(text: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:  # host bits are allowed: a legacy field (StrictIPCIDRValidation is off by default)
        return ipaddress.ip_network(text, strict=False) if "/" in str(text) else None
    except ValueError:
        return None


def _block_refusals(block: Mapping[str, Any], path: str) -> list[str]:
    whole = _cidr(block.get("cidr"))
    if whole is None:
        return [f"{path}.cidr: {block.get('cidr')!r} is not a CIDR"]
    out = []
    for i, text in enumerate(block.get("except") or []):
        hole = _cidr(text)
        if hole is None:
            out.append(f"{path}.except[{i}]: {text!r} is not a CIDR")
        elif not (hole.version == whole.version and hole != whole and hole.subnet_of(whole)):  # type: ignore[arg-type]
            out.append(f"{path}.except[{i}]: {text} is not a strict subset of {whole}")
    return out


def _selector_refusals(selector: Any, path: str) -> list[str]:
    out = []
    for i, req in enumerate((selector or {}).get("matchExpressions") or []):
        op, has_values = req.get("operator"), bool(req.get("values"))
        where = f"{path}.matchExpressions[{i}]"
        if op in ("In", "NotIn") and not has_values:
            out.append(f"{where}.values: {op} needs values")
        elif op in ("Exists", "DoesNotExist") and has_values:
            out.append(f"{where}.values: {op} takes no values")
        elif op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            out.append(f"{where}.operator: {op!r} is not a selector operator")
    return out
