"""NetworkPolicy (networking.k8s.io/v1) on write: the API server's defaults, validation, and
the object it stores (and so returns on GET).

Read from kubernetes/kubernetes (learned, not copied):
- pkg/apis/networking/v1/defaults.go `SetDefaults_NetworkPolicy`: when `len(policyTypes) == 0`
  (absent, null, or an EMPTY list alike) policyTypes becomes [Ingress], plus Egress when
  `len(egress) != 0` (an empty egress list adds nothing); `SetDefaults_NetworkPolicyPort`: a
  port of any rule without a protocol gets TCP. Defaults come before validation.
- pkg/apis/networking/validation/validation.go `ValidateNetworkPolicySpec` (the podSelector,
  every rule's ports and peers, at most two policyTypes, each Ingress or Egress),
  `ValidateNetworkPolicyPort` (protocol exactly TCP, UDP or SCTP; a numeric port in 1-65535;
  endPort >= port and in 1-65535, not allowed with a named port or without a port; a named
  port an IANA service name), `ValidateNetworkPolicyPeer` (at least one of podSelector,
  namespaceSelector, ipBlock; an ipBlock alone), `ValidateIPBlock` (cidr required and
  parsable; each except parsable and a strict subset of cidr); selectors as apimachinery's
  pkg/apis/meta/v1/validation `ValidateLabelSelector` / `ValidateLabelSelectorRequirement`.
- What Go encodes back: lists and maps are `omitempty`, so `ingress: []`, `from: []`,
  `ports: []`, `matchLabels: {}` come back absent (each means what absent means).

Every problem of one write is a cause of one 422 Invalid, each naming its field.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from provisioning.lab.apiserver.errors import (
    Cause,
    bad_value,
    forbidden_field,
    not_supported,
    required,
)

PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_RULES = (("ingress", "from"), ("egress", "to"))

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PORT_NAME_CHARS = re.compile(r"^[-a-z0-9]+$")

# upstream's messages (validation.go and apimachinery's), as a real server words them
NO_PORT = "may not be specified when `port` is not specified"
NAMED_PORT = "may not be specified when `port` is non-numeric"
BELOW_PORT = "must be greater than or equal to `port`"
IN_VALUES = "must be specified when `operator` is 'In' or 'NotIn'"
EXISTS_VALUES = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
BAD_CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
LABEL_NAME = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character"
)


# -- defaulting and the stored form -------------------------------------------------------------


def set_defaults(spec: dict[str, Any]) -> None:
    """`SetDefaults_NetworkPolicy` and `SetDefaults_NetworkPolicyPort`, in place."""
    spec.setdefault("podSelector", {})
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", *(["Egress"] if spec.get("egress") else [])]
    for direction, _ in _RULES:
        for rule in _dicts(spec.get(direction)):
            for port in _dicts(rule.get("ports")):
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"


def stored_form(spec: dict[str, Any]) -> None:
    """Drop what Go's encoder omits: empty (or null) lists and maps of the spec, in place."""
    for key in ("ingress", "egress"):
        if not spec.get(key):
            spec.pop(key, None)
    _drop_empty_selector_parts(spec.get("podSelector"))
    for direction, peers in _RULES:
        for rule in _dicts(spec.get(direction)):
            for key in (peers, "ports"):
                if not rule.get(key):
                    rule.pop(key, None)
            for peer in _dicts(rule.get(peers)):
                _drop_empty_selector_parts(peer.get("podSelector"))
                _drop_empty_selector_parts(peer.get("namespaceSelector"))
                block = peer.get("ipBlock")
                if isinstance(block, dict) and not block.get("except"):
                    block.pop("except", None)


def _drop_empty_selector_parts(selector: Any) -> None:
    if isinstance(selector, dict):
        for key in ("matchLabels", "matchExpressions"):
            if not selector.get(key):
                selector.pop(key, None)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value or [] if isinstance(v, dict)]


# -- validation -----------------------------------------------------------------------------------


def spec_causes(spec: dict[str, Any]) -> list[Cause]:
    """`ValidateNetworkPolicySpec` on a defaulted spec: every problem, in upstream's order."""
    causes = selector_causes(spec.get("podSelector"), "spec.podSelector")
    for direction, peers in _RULES:
        for i, rule in enumerate(spec.get(direction) or []):
            where = f"spec.{direction}[{i}]"
            for j, port in enumerate(rule.get("ports") or []):
                causes += port_causes(port, f"{where}.ports[{j}]")
            for j, peer in enumerate(rule.get(peers) or []):
                causes += peer_causes(peer, f"{where}.{peers}[{j}]")
    types = spec.get("policyTypes") or []
    if len(types) > len(POLICY_TYPES):
        too_many = "may not specify more than two policyTypes"
        return [*causes, bad_value("spec.policyTypes", types, too_many)]
    for i, kind in enumerate(types):
        if kind not in POLICY_TYPES:
            causes.append(not_supported(f"spec.policyTypes[{i}]", kind, POLICY_TYPES))
    return causes


def port_causes(port: dict[str, Any], where: str) -> list[Cause]:
    """`ValidateNetworkPolicyPort`."""
    causes = []
    protocol = port.get("protocol")
    if protocol not in PORT_PROTOCOLS:
        causes.append(not_supported(f"{where}.protocol", protocol, PORT_PROTOCOLS))
    value, end = port.get("port"), port.get("endPort")
    if value is None:
        if end is not None:
            causes.append(bad_value(f"{where}.endPort", end, NO_PORT))
    elif isinstance(value, int):
        causes += _port_number(value, f"{where}.port")
        if end is not None:
            if end < value:
                causes.append(bad_value(f"{where}.endPort", end, BELOW_PORT))
            causes += _port_number(end, f"{where}.endPort")
    else:
        if end is not None:
            causes.append(bad_value(f"{where}.endPort", end, NAMED_PORT))
        causes += [bad_value(f"{where}.port", value, m) for m in port_name_problems(str(value))]
    return causes


def _port_number(value: int, where: str) -> list[Cause]:
    if 1 <= value <= 65535:
        return []
    return [bad_value(where, value, "must be between 1 and 65535, inclusive")]


def port_name_problems(name: str) -> list[str]:
    """apimachinery util/validation `IsValidPortName`: an IANA_SVC_NAME."""
    problems = []
    if len(name) > 15:
        problems.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARS.match(name):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        problems.append("must contain at least one letter (a-z)")
    if "--" in name:
        problems.append("must not contain consecutive hyphens (--)")
    if name.startswith("-") or name.endswith("-"):
        problems.append("must not begin or end with a hyphen (-)")
    return problems


def peer_causes(peer: dict[str, Any], where: str) -> list[Cause]:
    """`ValidateNetworkPolicyPeer`."""
    causes: list[Cause] = []
    present = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            present += 1
            causes += selector_causes(peer[key], f"{where}.{key}")
    block = peer.get("ipBlock")
    if block is not None:
        present += 1
        causes += ip_block_causes(block, f"{where}.ipBlock")
    if present == 0:
        causes.append(required(where, "must specify a peer"))
    elif present > 1 and block is not None:
        causes.append(forbidden_field(where, "may not specify both ipBlock and another peer"))
    return causes


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR as a legacy field parses it (host bits allowed: StrictIPCIDRValidation is off by
    default, pkg/features `StrictIPCIDRValidation`)."""
    if "/" not in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def ip_block_causes(block: dict[str, Any], where: str) -> list[Cause]:
    """`ValidateIPBlock`."""
    cidr = str(block.get("cidr") or "")
    if not cidr:
        return [required(f"{where}.cidr")]
    net = _network(cidr)
    if net is None:
        return [bad_value(f"{where}.cidr", cidr, BAD_CIDR)]
    causes = []
    for i, text in enumerate(block.get("except") or []):
        cut = _network(str(text))
        path = f"{where}.except[{i}]"
        if cut is None:
            causes.append(bad_value(path, text, BAD_CIDR))
        elif (
            cut.version != net.version
            or cut.network_address not in net
            or cut.prefixlen <= net.prefixlen
        ):
            causes.append(bad_value(path, text, "must be a strict subset of `cidr`"))
    return causes


def selector_causes(selector: Any, where: str) -> list[Cause]:
    """`ValidateLabelSelector`: label keys and values, and each requirement's operator."""
    if not isinstance(selector, dict):
        return []
    causes = []
    for key, value in (selector.get("matchLabels") or {}).items():
        causes += _label_key(str(key), f"{where}.matchLabels")
        if not _label_value_ok(str(value)):
            causes.append(bad_value(f"{where}.matchLabels", value, LABEL_VALUE))
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        path = f"{where}.matchExpressions[{i}]"
        op, values = expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn") and not values:
            causes.append(required(f"{path}.values", IN_VALUES))
        elif op in ("Exists", "DoesNotExist") and values:
            causes.append(forbidden_field(f"{path}.values", EXISTS_VALUES))
        elif op not in OPERATORS:
            causes.append(bad_value(f"{path}.operator", op, "not a valid selector operator"))
        causes += _label_key(str(expr.get("key") or ""), f"{path}.key")
        causes += [
            bad_value(f"{path}.values[{j}]", v, LABEL_VALUE)
            for j, v in enumerate(values)
            if not _label_value_ok(str(v))
        ]
    return causes


def _label_key(key: str, where: str) -> list[Cause]:
    """A qualified name: an optional DNS-subdomain prefix and `/`, then a name of <= 63."""
    prefix, _, name = key.rpartition("/")
    ok = bool(name) and len(name) <= 63 and bool(_NAME.match(name))
    if prefix or "/" in key:
        ok = ok and len(prefix) <= 253 and bool(_DNS_SUBDOMAIN.match(prefix))
    if ok:
        return []
    return [bad_value(where, key, LABEL_NAME)]


def _label_value_ok(value: str) -> bool:
    return value == "" or (len(value) <= 63 and bool(_NAME.match(value)))
