"""The endpoints controller: a service with a selector gets Endpoints listing its pods'
addresses (ready and not ready) and resolved target ports."""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from provisioning.lab.apiserver.model import BY_KIND, Event, Obj
from provisioning.lab.apiserver.objects import labels_of, pod_ready, pod_terminal, pod_terminating
from provisioning.lab.apiserver.selectors import selector_from_spec
from provisioning.lab.controllers.base import WorkQueueController

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


class EndpointsController(WorkQueueController):
    name: ClassVar[str] = "endpoints"
    watches: ClassVar[frozenset[str]] = frozenset({"Service", "Pod"})

    def keys(self, store: Store, event: Event) -> set[tuple[str, str]]:
        if event.kind == "Service" and event.type == "DELETED":  # the cascade removes it
            return set()
        return services_touched(store, event)

    def sync(self, store: Store, namespace: str, name: str) -> None:
        svc = store.lookup(BY_KIND["Service"], namespace, name)
        if svc is None or not svc["spec"].get("selector"):
            return
        selector = selector_from_spec({"matchLabels": svc["spec"]["selector"]})
        pods = store.select(BY_KIND["Pod"], namespace, selector)
        subsets = endpoint_subsets(svc, pods)
        ep_res = BY_KIND["Endpoints"]
        current = store.lookup(ep_res, namespace, name)
        body: Obj = {"metadata": {"name": name, "namespace": namespace,
                                  "labels": labels_of(svc)}, "subsets": subsets}  # fmt: skip
        if current is None:
            store.create_now(ep_res, namespace, body)
        elif current.get("subsets") != subsets or labels_of(current) != labels_of(svc):
            updated = copy.deepcopy(current)
            updated.update(subsets=subsets)
            updated["metadata"]["labels"] = labels_of(svc)
            store.replace_now(ep_res, namespace, name, updated)


def resolve_target_port(port: Obj, pod: Obj) -> int | None:
    """A service port's targetPort as a number for `pod` (named ports looked up)."""
    target = port.get("targetPort", port["port"])
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in pod["spec"].get("containers") or []:
        for cport in container.get("ports") or []:
            if cport.get("name") == target and cport.get("protocol", "TCP") == port["protocol"]:
                return int(cport["containerPort"])
    return None


def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj] | None:
    """The Endpoints ports of `svc` for `pod`, None when a named port does not resolve."""
    ports = []
    for port in svc["spec"].get("ports") or []:
        number = resolve_target_port(port, pod)
        if number is None:
            return None
        entry: Obj = {"port": number, "protocol": port["protocol"]}
        if port.get("name"):
            entry["name"] = port["name"]
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        ports.append(entry)
    return ports


def endpoint_address(pod: Obj) -> Obj:
    """An EndpointAddress pointing at `pod`."""
    m = pod["metadata"]
    address: Obj = {
        "ip": pod["status"]["podIP"],
        "targetRef": {"kind": "Pod", "namespace": m["namespace"], "name": m["name"],
                      "uid": m["uid"]},
    }  # fmt: skip
    if pod["spec"].get("nodeName"):
        address["nodeName"] = pod["spec"]["nodeName"]
    return address


def endpoint_subsets(svc: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """Subsets for `svc`: pods with an IP grouped by resolved ports, ready or not."""
    groups: dict[str, tuple[list[Obj], list[Obj], list[Obj]]] = {}
    publish_all = bool(svc["spec"].get("publishNotReadyAddresses"))
    for pod in pods:
        ports = endpoint_ports(svc, pod)
        if not (pod.get("status") or {}).get("podIP") or pod_terminal(pod) or ports is None:
            continue
        if pod_terminating(pod) and not publish_all:
            continue  # a Terminating pod leaves the Endpoints, as the endpoints controller does
        group = groups.setdefault(json.dumps(ports, sort_keys=True), (ports, [], []))
        group[1 if publish_all or pod_ready(pod) else 2].append(endpoint_address(pod))
    subsets = []
    for _, (ports, ready, not_ready) in sorted(groups.items()):
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: ipaddress.ip_address(a["ip"]))
        if not_ready:
            subset["notReadyAddresses"] = sorted(
                not_ready, key=lambda a: ipaddress.ip_address(a["ip"])
            )
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    return subsets


def services_touched(store: Store, event: Event) -> set[tuple[str, str]]:
    """(namespace, name) of the Services whose endpoints a Service or Pod event may change."""
    m = event.obj["metadata"]
    ns = m.get("namespace", "")
    if event.kind == "Service":
        return {(ns, m["name"])}
    if event.kind != "Pod":
        return set()
    services = store.select(BY_KIND["Service"], ns)
    return {(ns, s["metadata"]["name"]) for s in services if s["spec"].get("selector")}
