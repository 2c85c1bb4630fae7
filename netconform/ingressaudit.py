"""Findings in a cluster's live Ingresses that an ingress-nginx controller would serve wrong or
not at all, read from the API objects alone (no traffic): a backend Service missing or without
ready endpoints, a TLS Secret missing, malformed, not for the host or close to expiry, a canary
without its main Ingress, a weight above its total, a header pattern that does not compile.

Written from the Kubernetes Ingress API reference and ingress-nginx's documented annotation
semantics, independently of the lab's controller (a second opinion must not share its code).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from netconform import certcheck

Obj = Mapping[str, Any]
PREFIX = "nginx.ingress.kubernetes.io/"


@dataclass(frozen=True)
class Finding:
    """One thing wrong with one Ingress."""

    ingress: str
    """`namespace/name`."""
    message: str

    def __str__(self) -> str:
        return f"Ingress {self.ingress}: {self.message}"


@dataclass(frozen=True)
class Objects:
    """What the audit reads, as plain API dicts, by (namespace, name)."""

    ingresses: Sequence[Obj]
    services: Mapping[tuple[str, str], Obj]
    ready: Mapping[tuple[str, str], int]
    """Ready endpoints per Service."""
    secrets: Mapping[tuple[str, str], Obj]


def audit(objects: Objects, class_name: str, now: dt.datetime, margin_days: int) -> list[Finding]:
    """Every finding in the Ingresses of `class_name`."""
    ours = [i for i in objects.ingresses if _class(i) == class_name]
    mains = [i for i in ours if not _is_canary(i)]
    found: list[Finding] = []
    for ing in ours:
        where = f"{ing['metadata'].get('namespace', '')}/{ing['metadata']['name']}"
        found += [Finding(where, m) for m in _backends(ing, objects)]
        found += [Finding(where, m) for m in _tls(ing, objects, now, margin_days)]
        found += [Finding(where, m) for m in _canary(ing, mains)]
    return found


def _class(ing: Obj) -> str:
    spec = ing.get("spec") or {}
    notes = ing["metadata"].get("annotations") or {}
    return str(spec.get("ingressClassName") or notes.get("kubernetes.io/ingress.class") or "")


def _notes(ing: Obj) -> Mapping[str, str]:
    return {str(k): str(v) for k, v in (ing["metadata"].get("annotations") or {}).items()}


def _is_canary(ing: Obj) -> bool:
    return _notes(ing).get(PREFIX + "canary", "").lower() == "true"


def _paths(ing: Obj) -> Iterable[tuple[str, Obj]]:
    for rule in (ing.get("spec") or {}).get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            yield str(rule.get("host") or "*"), path


def _backends(ing: Obj, objects: Objects) -> list[str]:
    namespace = ing["metadata"].get("namespace", "")
    refs = [(f"{h}{p.get('path', '/')}", p.get("backend") or {}) for h, p in _paths(ing)]
    default = (ing.get("spec") or {}).get("defaultBackend")
    if default:
        refs.append(("the default backend", default))
    messages = []
    for where, ref in refs:
        service = ref.get("service") or {}
        name = service.get("name")
        if not name:
            continue
        key = (namespace, str(name))
        if key not in objects.services:
            messages.append(f"{where}: backend Service {namespace}/{name} not found (503)")
        elif objects.services[key].get("spec", {}).get(
            "type"
        ) != "ExternalName" and not objects.ready.get(key):
            messages.append(
                f"{where}: backend Service {namespace}/{name} has no ready endpoints (503)"
            )
    return list(dict.fromkeys(messages))


def _tls(ing: Obj, objects: Objects, now: dt.datetime, margin: int) -> list[str]:
    namespace = ing["metadata"].get("namespace", "")
    messages = []
    for entry in (ing.get("spec") or {}).get("tls") or []:
        name, hosts = entry.get("secretName"), [str(h) for h in entry.get("hosts") or []]
        if not name:
            continue
        secret = objects.secrets.get((namespace, str(name)))
        if secret is None:
            messages.append(
                f"TLS Secret {namespace}/{name} not found: the controller serves its "
                f"fake certificate for {', '.join(hosts) or 'these hosts'}"
            )
            continue
        cert, problem = _load(secret)
        if cert is None:
            messages.append(
                f"TLS Secret {namespace}/{name}: {problem}: the controller serves its"
                " fake certificate"
            )
            continue
        for host in hosts:
            if not certcheck.check_san(cert, host).ok:
                messages.append(
                    f"TLS Secret {namespace}/{name} does not name {host}: the "
                    "controller serves its fake certificate for it"
                )
        expiry = certcheck.check_expiry(cert, now, margin, ", ".join(hosts))
        if not expiry.ok:
            messages.append(f"TLS Secret {namespace}/{name}: {expiry.message}")
    return messages


def _load(secret: Obj) -> tuple[x509.Certificate | None, str]:
    data = secret.get("data") or {}
    if not data.get("tls.crt") or not data.get("tls.key"):
        return None, "it has no tls.crt or tls.key"
    try:
        cert_pem = base64.b64decode(data["tls.crt"], validate=True)
        key_pem = base64.b64decode(data["tls.key"], validate=True)
    except (binascii.Error, ValueError):
        return None, "tls.crt or tls.key is not base64"
    try:
        cert = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        return None, "tls.crt is not a PEM certificate"
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return None, "tls.key is not a PEM private key"
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        return None, "tls.key does not belong to tls.crt"
    return cert, ""


def _canary(ing: Obj, mains: Sequence[Obj]) -> list[str]:
    notes = _notes(ing)
    canary_keys = [k for k in notes if k.startswith(PREFIX + "canary-")]
    if not _is_canary(ing):
        return (
            [
                f'canary annotations without {PREFIX}canary: "true" ({", ".join(canary_keys)})'
                ": ingress-nginx treats it as a regular Ingress"
            ]
            if canary_keys
            else []
        )
    messages = []
    weight, total = (
        _int(notes.get(PREFIX + "canary-weight", "0")),
        _int(notes.get(PREFIX + "canary-weight-total", "100")),
    )
    if weight is None or total is None:
        messages.append(
            "canary-weight or canary-weight-total is not a whole number: "
            "ingress-nginx uses 0 and 100 instead"
        )
    elif weight > max(total, 100):
        messages.append(
            f"canary-weight {weight} is above canary-weight-total "
            f"{max(total, 100)}: every request goes to the canary"
        )
    pattern = notes.get(PREFIX + "canary-by-header-pattern", "")
    if pattern and not notes.get(PREFIX + "canary-by-header-value"):
        try:
            re.compile(pattern)
        except re.error as err:
            messages.append(
                f"canary-by-header-pattern {pattern!r} does not compile ({err}): "
                "requests carrying the header go to the main backend"
            )
    # a canary joins a main Ingress of any namespace with the same host, path and pathType
    served = {(h, p.get("path", "/"), p.get("pathType")) for m in mains for h, p in _paths(m)}
    for host, path in _paths(ing):
        if (host, path.get("path", "/"), path.get("pathType")) not in served:
            messages.append(
                f"no main Ingress serves {host}{path.get('path', '/')} "
                f"({path.get('pathType')}): this canary is ignored"
            )
    return messages


def _int(text: str) -> int | None:
    return int(text) if re.fullmatch(r"\s*[+-]?\d+\s*", text) else None
