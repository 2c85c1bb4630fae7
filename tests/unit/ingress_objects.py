"""API objects for the ingress controller's tests, written as a user would write them."""

from __future__ import annotations

import base64
import datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from provisioning.lab.ingress import certs, model
from provisioning.lab.ingress.settings import controller_settings

Obj = dict[str, Any]
NS = "east"
NGINX_CLASS: Obj = {"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}


def path(p: str, service: str, path_type: str = "Prefix", port: int | str = 80) -> Obj:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {
        "path": p,
        "pathType": path_type,
        "backend": {"service": {"name": service, "port": ref}},
    }


def rule(host: str | None, *paths: Obj) -> Obj:
    found: Obj = {"http": {"paths": list(paths)}}
    if host is not None:
        found["host"] = host
    return found


def ingress(
    name: str,
    *rules: Obj,
    annotations: dict[str, str] | None = None,
    tls: list[Obj] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    class_name: str | None = "nginx",
    namespace: str = NS,
) -> Obj:
    spec: Obj = {"rules": list(rules)}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if tls is not None:
        spec["tls"] = tls
    meta = {
        "name": name,
        "namespace": namespace,
        "creationTimestamp": created,
        "annotations": annotations or {},
        "resourceVersion": "1",
    }
    return {"metadata": meta, "spec": spec}


def canary(name: str, *rules: Obj, created: str = "2026-01-02T00:00:00Z", **notes: str) -> Obj:
    """A canary Ingress; `notes` are canary annotations without the prefix (`weight="5"`)."""
    annotations = {"nginx.ingress.kubernetes.io/canary": "true"}
    for key, value in notes.items():
        annotations[f"nginx.ingress.kubernetes.io/canary-{key.replace('_', '-')}"] = value
    return ingress(name, *rules, annotations=annotations, created=created)


def service(name: str, port: int = 80, port_name: str = "http") -> Obj:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "type": "ClusterIP",
            "ports": [{"name": port_name, "port": port, "targetPort": 8080}],
        },
    }


def endpoints(*addresses: str, ready: bool = True, port_name: str = "http") -> tuple[Obj, ...]:
    return (
        {
            "ports": [{"name": port_name, "port": 8080}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": ready}} for a in addresses],
        },
    )


def host_cert(*names: str, days: int = 90) -> certs.Cert:
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    return certs.self_signed(
        subject,
        names,
        now - datetime.timedelta(days=1),
        now + datetime.timedelta(days=days),
        "test",
    )


def tls_secret(name: str, cert: certs.Cert) -> Obj:
    data = {
        "tls.crt": base64.b64encode(cert.cert_pem).decode(),
        "tls.key": base64.b64encode(cert.key_pem).decode(),
    }
    return {"metadata": {"name": name, "namespace": NS}, "type": "kubernetes.io/tls", "data": data}


def snapshot(
    *ingresses: Obj,
    services: dict[str, tuple[Obj, ...]] | None = None,
    secrets: list[Obj] | None = None,
    configmap: dict[str, str] | None = None,
) -> model.Snapshot:
    """A cluster holding `ingresses`; `services` maps a name to its EndpointSlices (every
    Service answers on port 80 named http unless given otherwise)."""
    services = services if services is not None else {}
    return model.Snapshot(
        ingresses=ingresses,
        classes=(NGINX_CLASS,),
        services={(NS, n): service(n) for n in services},
        slices={(NS, n): s for n, s in services.items()},
        secrets={(NS, s["metadata"]["name"]): s for s in secrets or []},
        settings=controller_settings(configmap),
    )
