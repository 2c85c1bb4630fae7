"""Services: validation, defaults, clusterIP and nodePort allocation, and the delete cascade
to the Endpoints the endpoints controller made."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, Final

from provisioning.lab.apiserver.errors import ApiError, Cause, bad_value, invalid, required
from provisioning.lab.apiserver.kinds.base import KindRules
from provisioning.lab.apiserver.model import BY_KIND, Obj

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store

NODE_PORTS: Final = range(30000, 32768)


class ServiceRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise invalid(obj, required("spec"))
        problem = service_spec_problem(spec)
        if problem:
            raise invalid(obj, problem)
        default_service_spec(spec)
        old_spec = old["spec"] if old is not None else {}
        allocations = store.allocations
        ip = allocations.plan_cluster_ip(obj, old_spec)
        ports = allocations.plan_node_ports(obj, old_spec)
        allocations.commit(obj, old_spec, ip, ports)
        if old is None:
            obj["status"] = {"loadBalancer": {}}

    def after_delete(self, store: Store, obj: Obj) -> None:
        ns, name = obj["metadata"].get("namespace"), obj["metadata"]["name"]
        store.allocations.release(obj.get("spec") or {})
        ep = BY_KIND["Endpoints"]
        if obj["spec"].get("selector") and store.lookup(ep, ns, name) is not None:
            store.delete_now(ep, ns, name)


class IpPool:
    """ClusterIPs of one service CIDR; skips the network and broadcast addresses and never
    hands out the first one, which the `kubernetes` Service holds (as a real allocator)."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.used: set[str] = set()
        self._offset = 2

    def check(self, ip: str) -> str | None:
        """Why `ip` cannot be taken, or None."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return "must be a valid IP address"
        size = self.network.num_addresses
        offset = int(addr) - int(self.network.network_address)
        if addr not in self.network or offset < 1 or (size > 2 and offset == size - 1):
            return (f"provided IP is not in the valid range. The range of valid IPs is "
                    f"{self.network}")  # fmt: skip
        if str(addr) in self.used:
            return "provided IP is already allocated"
        return None

    def allocate(self) -> str:
        """The next free address, round-robin."""
        size = self.network.num_addresses
        for step in range(size):
            offset = 2 + (self._offset - 2 + step) % max(size - 3, 1)
            ip = str(self.network.network_address + offset)
            if self.check(ip) is None:
                self._offset = offset + 1
                self.used.add(ip)
                return ip
        raise ApiError(500, "InternalError", "failed to allocate a serviceIP: range is full")


class ServiceAllocations:
    """The clusterIPs and nodePorts services of one cluster hold."""

    def __init__(self, cidr: str) -> None:
        self.ips = IpPool(cidr)
        self.node_ports: set[int] = set()

    def plan_cluster_ip(self, svc: Obj, old_spec: Obj) -> str | None:
        """The clusterIP the service will hold (None for ExternalName)."""
        spec = svc["spec"]
        if spec["type"] == "ExternalName":
            return None
        wanted = spec.get("clusterIP") or (spec.get("clusterIPs") or [""])[0]
        current = old_spec.get("clusterIP")
        if current and wanted and wanted != current:
            raise invalid(svc, bad_value("spec.clusterIPs[0]", wanted, "field is immutable"))
        if current or wanted == "None":
            return str(current or wanted)
        if wanted:
            problem = self.ips.check(wanted)
            if problem:
                raise invalid(svc, bad_value("spec.clusterIPs", [wanted], problem))
            return str(wanted)
        return ""  # allocate on commit

    def plan_node_ports(self, svc: Obj, old_spec: Obj) -> list[int]:
        """The nodePort of each port (empty when the type has none)."""
        spec = svc["spec"]
        if spec["type"] not in ("NodePort", "LoadBalancer"):
            return []
        owned = {(p.get("port"), p.get("protocol")): p.get("nodePort")
                 for p in old_spec.get("ports") or [] if p.get("nodePort")}  # fmt: skip
        mine = {p for p in owned.values() if p}
        taken = self.node_ports - mine
        chosen: list[int] = []
        for i, port in enumerate(spec["ports"]):
            value = port.get("nodePort") or owned.get((port["port"], port["protocol"]))
            if value and (value not in NODE_PORTS or value in taken or value in chosen):
                why = "provided port is already allocated" if value in NODE_PORTS else (
                    f"provided port is not in the valid range. The range of valid ports is "
                    f"{NODE_PORTS.start}-{NODE_PORTS.stop - 1}")  # fmt: skip
                raise invalid(svc, bad_value(f"spec.ports[{i}].nodePort", value, why))
            chosen.append(int(value or 0))
        free = (p for p in NODE_PORTS if p not in taken and p not in chosen)
        return [p or next(free) for p in chosen]

    def commit(self, svc: Obj, old_spec: Obj, ip: str | None, node_ports: list[int]) -> None:
        spec = svc["spec"]
        self.release(old_spec)
        if ip == "":
            ip = self.ips.allocate()
        if ip is None:
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        else:
            if ip != "None":
                self.ips.used.add(ip)
            spec.update(clusterIP=ip, clusterIPs=[ip])
        for port, node_port in zip(spec["ports"], node_ports, strict=False):
            port["nodePort"] = node_port
            self.node_ports.add(node_port)
        if not node_ports:
            for port in spec["ports"]:
                port.pop("nodePort", None)

    def release(self, spec: Obj) -> None:
        self.ips.used.discard(spec.get("clusterIP") or "")
        for port in spec.get("ports") or []:
            self.node_ports.discard(port.get("nodePort") or 0)


def service_spec_problem(spec: Obj) -> Cause | None:
    """Default the type and port protocols, then return the first problem (or None)."""
    kind = spec.setdefault("type", "ClusterIP")
    types = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
    if kind not in types:
        return Cause(
            "spec.type",
            "FieldValueNotSupported",
            f'Unsupported value: "{kind}": supported values: {", ".join(types)}',
        )
    if kind == "ExternalName":
        return None if spec.get("externalName") else required("spec.externalName")
    ports = spec.get("ports") or []
    if not ports and spec.get("clusterIP") != "None":
        return required("spec.ports")
    names: set[str] = set()
    for i, port in enumerate(ports):
        problem = service_port_problem(port, i, len(ports), names)
        if problem:
            return problem
    selector = spec.get("selector")
    if selector is not None and not isinstance(selector, dict):
        return bad_value("spec.selector", selector, "must map strings to strings")
    return None


def service_port_problem(port: Any, i: int, count: int, names: set[str]) -> Cause | None:
    """The problem of one service port (or None); defaults its protocol."""
    where = f"spec.ports[{i}]"
    if not isinstance(port, dict):
        return bad_value(where, port, "must be an object")
    value = port.get("port")
    if not isinstance(value, int) or not 0 < value < 65536:
        return bad_value(f"{where}.port", value, "must be between 1 and 65535, inclusive")
    name = port.get("name") or ""
    if count > 1 and not name:
        return required(f"{where}.name")
    if name in names:
        return Cause(f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"')
    names.add(name)
    if port.setdefault("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
        return Cause(f"{where}.protocol", "FieldValueNotSupported",
                     f'Unsupported value: "{port["protocol"]}"')  # fmt: skip
    return None


def default_service_spec(spec: Obj) -> None:
    """The defaults the API server fills in a service spec."""
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("ports", [])
    for port in spec["ports"]:
        port.setdefault("targetPort", port["port"])
    if spec["type"] == "ExternalName":
        return
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
