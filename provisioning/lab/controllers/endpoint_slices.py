"""The EndpointSlice controller: a selector Service's pods mirrored into EndpointSlices
(discovery.k8s.io/v1), what kubectl 1.37's `describe svc` and kube-proxy read today.

Written as the real controller writes them: one slice per distinct set of resolved ports
(usually one), named `<service>-<5 random chars>`, labelled with the service's name and the
controller as manager, owned by the Service; every pod with an IP that has not finished is an
endpoint (Terminating ones too, with `ready: false, terminating: true`). A service without
pods keeps one placeholder slice with no ports and no endpoints. Slices go with their Service.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from typing import TYPE_CHECKING, ClassVar, Final

from provisioning.lab.apiserver.model import BY_KIND, Event, Obj
from provisioning.lab.apiserver.objects import labels_of, pod_ready, pod_terminal, pod_terminating
from provisioning.lab.apiserver.selectors import selector_from_spec
from provisioning.lab.controllers.base import WorkQueueController
from provisioning.lab.controllers.endpoints import resolve_target_port, services_touched

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store

SERVICE_NAME: Final = "kubernetes.io/service-name"
MANAGED_BY: Final = "endpointslice.kubernetes.io/managed-by"
MANAGER: Final = "endpointslice-controller.k8s.io"
HEADLESS: Final = "service.kubernetes.io/headless"
ZONE: Final = "topology.kubernetes.io/zone"
SLICE: Final = BY_KIND["EndpointSlice"]


class EndpointSliceController(WorkQueueController):
    name: ClassVar[str] = "endpointslices"
    watches: ClassVar[frozenset[str]] = frozenset({"Service", "Pod"})

    def keys(self, store: Store, event: Event) -> set[tuple[str, str]]:
        return services_touched(store, event)  # a deleted Service's slices go too

    def sync(self, store: Store, namespace: str, name: str) -> None:
        svc = store.lookup(BY_KIND["Service"], namespace, name)
        existing = managed_slices(store, namespace, name)
        if svc is None or svc["spec"].get("type") == "ExternalName":
            for old in existing:
                store.delete_now(SLICE, namespace, old["metadata"]["name"])
        elif svc["spec"].get("selector"):
            sync_slices(store, svc, existing)


def managed_slices(store: Store, namespace: str, service: str) -> list[Obj]:
    """The slices this controller made for `service` (not ones users or others made)."""
    selector = selector_from_spec({"matchLabels": {SERVICE_NAME: service, MANAGED_BY: MANAGER}})
    return [copy.deepcopy(s) for s in store.select(SLICE, namespace, selector)]


def sync_slices(store: Store, svc: Obj, existing: list[Obj]) -> None:
    """Create, update and delete `svc`'s slices until they hold its endpoints."""
    namespace, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
    wanted = desired_groups(store, svc)
    by_ports = {json.dumps(s.get("ports") or [], sort_keys=True): s for s in existing}
    spare = [s for key, s in by_ports.items() if key not in wanted]
    spare += [s for s in existing if s not in by_ports.values()]  # duplicates of a port set
    for key, (ports, endpoints) in sorted(wanted.items()):
        current = by_ports.get(key) or (spare.pop(0) if spare else None)
        body: Obj = {"metadata": {"namespace": namespace, "labels": slice_labels(svc),
                                  "ownerReferences": [owner_reference(svc)]},
                     "addressType": "IPv4", "endpoints": endpoints, "ports": ports}  # fmt: skip
        if current is None:
            body["metadata"]["generateName"] = f"{name}-"
            store.create_now(SLICE, namespace, body)
            continue
        updated = {**current, "endpoints": endpoints, "ports": ports}
        updated["metadata"] = {**current["metadata"], **body["metadata"]}
        if updated != current:
            store.replace_now(SLICE, namespace, current["metadata"]["name"], updated)
    for old in spare:
        store.delete_now(SLICE, namespace, old["metadata"]["name"])


def desired_groups(store: Store, svc: Obj) -> dict[str, tuple[list[Obj], list[Obj]]]:
    """Port-set key -> (ports, endpoints sorted by address); one empty group without pods."""
    namespace = svc["metadata"]["namespace"]
    selector = selector_from_spec({"matchLabels": svc["spec"]["selector"]})
    groups: dict[str, tuple[list[Obj], list[Obj]]] = {}
    for pod in store.select(BY_KIND["Pod"], namespace, selector):
        if not (pod.get("status") or {}).get("podIP") or pod_terminal(pod):
            continue
        ports = slice_ports(svc, pod)
        key = json.dumps(ports, sort_keys=True)
        groups.setdefault(key, (ports, []))[1].append(slice_endpoint(store, svc, pod))
    for _, endpoints in groups.values():
        endpoints.sort(key=lambda e: ipaddress.ip_address(e["addresses"][0]))
    return groups or {"[]": ([], [])}


def slice_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """The service's ports resolved for `pod`; a named port the pod lacks is left out."""
    ports = []
    for port in svc["spec"].get("ports") or []:
        number = resolve_target_port(port, pod)
        if number is None:
            continue
        entry: Obj = {"name": port.get("name", ""), "port": number, "protocol": port["protocol"]}
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        ports.append(entry)
    return ports


def slice_endpoint(store: Store, svc: Obj, pod: Obj) -> Obj:
    """One pod as an endpoint; `ready` is never true while it terminates (unless the service
    publishes not-ready addresses), as the real controller keeps it."""
    m, spec = pod["metadata"], pod["spec"]
    publish = bool(svc["spec"].get("publishNotReadyAddresses"))
    serving = publish or pod_ready(pod)
    terminating = pod_terminating(pod)
    endpoint: Obj = {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {"ready": publish or (serving and not terminating), "serving": serving,
                       "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": m["namespace"], "name": m["name"],
                      "uid": m["uid"]},
    }  # fmt: skip
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        endpoint["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        endpoint["nodeName"] = spec["nodeName"]
        node = store.lookup(BY_KIND["Node"], None, spec["nodeName"])
        if node is not None and labels_of(node).get(ZONE):
            endpoint["zone"] = labels_of(node)[ZONE]
    return endpoint


def slice_labels(svc: Obj) -> dict[str, str]:
    """The service's labels plus the controller's own."""
    labels = {**labels_of(svc), SERVICE_NAME: svc["metadata"]["name"], MANAGED_BY: MANAGER}
    if svc["spec"].get("clusterIP") == "None":
        labels[HEADLESS] = ""
    return labels


def owner_reference(svc: Obj) -> Obj:
    """The Service as controlling owner (what garbage collection would follow)."""
    m = svc["metadata"]
    return {"apiVersion": "v1", "kind": "Service", "name": m["name"], "uid": m["uid"],
            "controller": True, "blockOwnerDeletion": True}  # fmt: skip
