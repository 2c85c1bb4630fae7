"""Server-side tables (`as=Table`), what `kubectl get` prints."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from provisioning.lab.apiserver.model import Obj


def age(stamp: str) -> str:
    """`42s`, `5m`, `3h`, `2d` since an RFC 3339 timestamp."""
    try:
        then = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return "<unknown>"
    seconds = int((datetime.datetime.now(datetime.UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _pod_cells(pod: Obj) -> list[Any]:
    status, spec = pod.get("status") or {}, pod["spec"]
    statuses = status.get("containerStatuses") or []
    ready = sum(bool(c.get("ready")) for c in statuses)
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    phase = "Terminating" if pod["metadata"].get("deletionTimestamp") else status.get("phase", "")
    return [f"{ready}/{len(spec['containers'])}", phase, restarts,
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>"]  # fmt: skip


def _service_cells(svc: Obj) -> list[Any]:
    spec, status = svc["spec"], svc.get("status") or {}
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or (
        "<pending>" if spec["type"] == "LoadBalancer" else spec.get("externalName", "<none>")
    )
    ports = (
        ",".join(
            f"{p['port']}"
            + (f":{p['nodePort']}" if p.get("nodePort") else "")
            + f"/{p['protocol']}"
            for p in spec.get("ports") or []
        )
        or "<none>"
    )
    selector = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items()) or "<none>"
    return [spec["type"], spec.get("clusterIP", "<none>"), external, ports, selector]


def _deployment_cells(dep: Obj) -> list[Any]:
    status = dep.get("status") or {}
    return [f"{status.get('readyReplicas', 0)}/{dep['spec']['replicas']}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0)]  # fmt: skip


def _endpoints_cells(ep: Obj) -> list[Any]:
    pairs = [f"{a['ip']}:{p['port']}" if s.get("ports") else a["ip"]
             for s in ep.get("subsets") or [] for a in s.get("addresses") or []
             for p in (s.get("ports") or [{}])]  # fmt: skip
    return [",".join(pairs[:3]) + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")
            or "<none>"]  # fmt: skip


def _first_three(values: list[str]) -> str:
    """`a,b,c + 2 more...`, or `<unset>` (how kubectl's printers shorten EndpointSlices)."""
    more = f" + {len(values) - 3} more..." if len(values) > 3 else ""
    return ",".join(values[:3]) + more if values else "<unset>"


def _endpoint_slice_cells(eps: Obj) -> list[Any]:
    ports = [str(p["port"]) for p in eps.get("ports") or [] if p.get("port") is not None]
    addresses = [a for e in eps.get("endpoints") or [] for a in e.get("addresses") or []]
    return [eps.get("addressType", ""), _first_three(ports), _first_three(addresses)]


def _node_cells(node: Obj) -> list[Any]:
    status = node["status"]
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])
    address = next(a["address"] for a in status["addresses"] if a["type"] == "InternalIP")
    version = status["nodeInfo"]["kubeletVersion"]
    return ["Ready" if ready else "NotReady", "<none>", version, address]


def _event_cells(ev: Obj) -> list[Any]:
    ref = ev.get("involvedObject") or {}
    return [age(ev.get("lastTimestamp") or ev["metadata"]["creationTimestamp"]), ev.get("type", ""),
            ev.get("reason", ""), f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}",
            ev.get("message", "")]  # fmt: skip


def _ingress_cells(ing: Obj) -> list[Any]:
    """kubectl's ingress printer: class, hosts, load balancer addresses, 80 (and 443)."""
    spec = ing.get("spec") or {}
    hosts = [r.get("host") or "*" for r in spec.get("rules") or []] or ["*"]
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    address = ",".join(i.get("ip") or i.get("hostname", "") for i in lb)
    return [spec.get("ingressClassName") or "<none>", ",".join(hosts), address,
            "80, 443" if spec.get("tls") else "80"]  # fmt: skip


AGE = ("Age", 0)
TABLE_COLUMNS: Final[dict[str, tuple[list[tuple[str, int]], Callable[[Obj], list[Any]]]]] = {
    "Pod": ([("Ready", 0), ("Status", 0), ("Restarts", 0), AGE, ("IP", 1), ("Node", 1)],
            _pod_cells),
    "Service": ([("Type", 0), ("Cluster-IP", 0), ("External-IP", 0), ("Port(s)", 0), AGE,
                 ("Selector", 1)], _service_cells),
    "Deployment": ([("Ready", 0), ("Up-to-date", 0), ("Available", 0), AGE], _deployment_cells),
    "ReplicaSet": ([("Desired", 0), ("Current", 0), ("Ready", 0), AGE],
                   lambda o: [o["spec"]["replicas"], (o.get("status") or {}).get("replicas", 0),
                              (o.get("status") or {}).get("readyReplicas", 0)]),
    "Endpoints": ([("Endpoints", 0), AGE], _endpoints_cells),
    "EndpointSlice": ([("AddressType", 0), ("Ports", 0), ("Endpoints", 0), AGE],
                      _endpoint_slice_cells),
    "Node": ([("Status", 0), ("Roles", 0), AGE, ("Version", 0), ("Internal-IP", 1)],
             _node_cells),
    "Namespace": ([("Status", 0), AGE], lambda o: [(o.get("status") or {}).get("phase", "")]),
    "Event": ([("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Message", 0)],
              _event_cells),
    "ConfigMap": ([("Data", 0), AGE], lambda o: [len(o.get("data") or {})]),
    "Ingress": ([("Class", 0), ("Hosts", 0), ("Address", 0), ("Ports", 0), AGE],
                _ingress_cells),
    "IngressClass": ([("Controller", 0), ("Parameters", 0), AGE],
                     lambda o: [(o.get("spec") or {}).get("controller", ""), "<none>"]),
    "Secret": ([("Type", 0), ("Data", 0), AGE],
               lambda o: [o.get("type", ""), len(o.get("data") or {})]),
}  # fmt: skip


def as_table(kind: str, items: list[Obj], resource_version: str) -> Obj:
    """A meta.k8s.io/v1 Table, as kubectl asks for with `as=Table`."""
    extra, cells = TABLE_COLUMNS.get(kind, ([AGE], lambda o: []))
    columns = [("Name", 1 if kind == "Event" else 0), *extra]
    computed = [c[0] for c in extra if c != AGE]
    definitions = [{"name": n, "type": "string", "format": "name" if n == "Name" else "",
                    "description": n, "priority": p} for n, p in columns]  # fmt: skip
    rows = []
    for obj in items:
        values = dict(zip(computed, cells(obj), strict=True))
        values.update(Name=obj["metadata"]["name"], Age=age(obj["metadata"]["creationTimestamp"]))
        partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": obj["metadata"]}  # fmt: skip
        rows.append({"cells": [values[n] for n, _ in columns], "object": partial})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": definitions, "rows": rows}  # fmt: skip


def wants_table(request: web.Request) -> bool:
    """kubectl's human-readable output asks for server-side tables."""
    return "as=Table" in request.headers.get("Accept", "")
