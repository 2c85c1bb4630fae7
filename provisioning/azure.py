"""Azure glue through azure-mgmt-network: VNet peering both ways, NSG inbound rules.

Peerings allow virtual network access and forwarded traffic. NSG rules open the required
TCP ports from each peer's address space. The audit reads peerings (state, flags, the remote
address space they route) and NSG rules, default rules included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as m

from netconform.cidr import network_cidrs, pairs
from netconform.cloudaudit import (
    ALL_PORTS,
    PeeringView,
    PortRange,
    Route,
    RouteTable,
    Rule,
    Snapshot,
    allows,
)
from netconform.errors import CloudError, TopologyError
from netconform.topology import Cluster, Topology
from provisioning.cloud import Action, ApplyReport, Change, apply_changes, cloud_clusters

T = TypeVar("T")
NO_CREDENTIALS = (
    "azure: no credentials (set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
    "AZURE_CLIENT_SECRET, or run `az login`)"
)
FIRST_PRIORITY = 3000
ANY = ("*", "any", "0.0.0.0/0", "internet")


@dataclass(frozen=True)
class VNetRef:
    """A VNet or NSG located by subscription, resource group and name."""

    subscription: str
    resource_group: str
    name: str

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Network/virtualNetworks/{self.name}"
        )


class AzureProvider:
    """VNet peerings between the clusters and NSG rules for the required ports."""

    cloud = "azure"

    def __init__(
        self,
        topology: Topology,
        credential: TokenCredential | None = None,
        base_url: str | None = None,
        **client_kwargs: Any,
    ) -> None:
        self.clusters = cloud_clusters(topology, "azure")
        self.ports = topology.required_ports
        self._vnets = {c.name: _vnet_ref(c) for c in self.clusters}
        self._nsgs = {c.name: _nsg_ref(c, self._vnets[c.name]) for c in self.clusters}
        self._credential = credential
        self._base_url = base_url
        self._kwargs = client_kwargs
        self._clients: dict[str, NetworkManagementClient] = {}
        self._checked = False

    # -- plumbing -------------------------------------------------------------------------

    def _client(self, subscription: str) -> NetworkManagementClient:
        if subscription not in self._clients:
            if self._credential is None:
                self._credential = _default_credential()
            kwargs = dict(self._kwargs)
            if self._base_url:
                kwargs["base_url"] = self._base_url
            self._clients[subscription] = NetworkManagementClient(
                self._credential, subscription, **kwargs
            )
        return self._clients[subscription]

    def _call(self, what: str, fn: Callable[[], T], not_found: str = "") -> T:
        """Run one API call; errors become one-line CloudErrors (`not_found` for a 404)."""
        try:
            return fn()
        except ResourceNotFoundError as err:
            raise CloudError(not_found or f"azure: not found: {what}: {_reason(err)}") from None
        except ClientAuthenticationError as err:
            if err.status_code is None:
                raise CloudError(NO_CREDENTIALS) from None
            raise CloudError(f"azure: credentials rejected: {what}: {_reason(err)}") from None
        except HttpResponseError as err:
            if err.status_code == 403:
                raise CloudError(f"azure: permission denied: {what}: {_reason(err)}") from None
            raise CloudError(f"azure: {what} failed: {_reason(err)}") from None
        except ServiceRequestError as err:
            raise CloudError(f"azure: cannot reach Azure Resource Manager: {err}") from None
        except AzureError as err:
            raise CloudError(f"azure: {what} failed: {err}") from None

    def _vnet(self, c: Cluster) -> Any:
        ref = self._vnets[c.name]
        return self._call(
            f"virtualNetworks.get {ref.name}",
            lambda: self._client(ref.subscription).virtual_networks.get(
                ref.resource_group, ref.name
            ),
            f"azure: VNet {ref.name} of cluster {c.name} does not exist in resource group "
            f"{ref.resource_group} (subscription {ref.subscription})",
        )

    def _nsg(self, c: Cluster) -> Any:
        ref = self._nsgs[c.name]
        return self._call(
            f"networkSecurityGroups.get {ref.name}",
            lambda: self._client(ref.subscription).network_security_groups.get(
                ref.resource_group, ref.name
            ),
            f"azure: NSG {ref.name} of cluster {c.name} does not exist in resource group "
            f"{ref.resource_group}",
        )

    def _peerings(self, c: Cluster) -> list[Any]:
        ref = self._vnets[c.name]
        return self._call(
            f"virtualNetworkPeerings.list {ref.name}",
            lambda: list(
                self._client(ref.subscription).virtual_network_peerings.list(
                    ref.resource_group, ref.name
                )
            ),
        )

    def preflight(self) -> None:
        """Credentials, existing VNets and NSGs in the named regions: read-only, once."""
        if self._checked:
            return
        for c in self.clusters:
            vnet = self._vnet(c)
            if _norm(vnet.location) != _norm(c.cloud_region):
                raise CloudError(
                    f"azure: unknown region {c.cloud_region!r} for cluster "
                    f"{c.name}: its VNet {vnet.name} is in {vnet.location!r}"
                )
            self._nsg(c)
        self._checked = True

    # -- plan -----------------------------------------------------------------------------

    def plan(self) -> list[Change]:
        """Peerings (both sides) first, then NSG rules."""
        self.preflight()
        changes: list[Change] = []
        for a, b in pairs(self.clusters):
            changes += [self._plan_side(a, b), self._plan_side(b, a)]
        for dst in self.clusters:
            changes += self._plan_rules(dst)
        return changes

    def _plan_side(self, local: Cluster, remote: Cluster) -> Change:
        lref, rref = self._vnets[local.name], self._vnets[remote.name]
        name = f"netconform-to-{remote.name}"
        what = f"vnet peering {lref.name} -> {rref.name} ({local.name}->{remote.name})"
        found = _find(self._peerings(local), rref)
        if found is None:
            return Change(
                "azure",
                local.cloud_region,
                "create",
                what,
                f"peering {name}",
                lambda: self._put_peering(local, remote, name),
            )
        state = _s(found.peering_state)
        if (
            found.allow_forwarded_traffic
            and found.allow_virtual_network_access
            and (state != "Disconnected")
        ):
            return Change("azure", local.cloud_region, "noop", what, f"{found.name} {state}")
        why = (
            "disconnected: re-create"
            if state == "Disconnected"
            else "allow virtual network access and forwarded traffic"
        )
        return Change(
            "azure",
            local.cloud_region,
            "update",
            what,
            f"{found.name}: {why}",
            lambda: self._put_peering(local, remote, found.name, recreate=state == "Disconnected"),
        )

    def _put_peering(
        self, local: Cluster, remote: Cluster, name: str, recreate: bool = False
    ) -> str:
        ref, remote_id = self._vnets[local.name], self._vnets[remote.name].id
        ops = self._client(ref.subscription).virtual_network_peerings
        if recreate:
            self._call(
                f"virtualNetworkPeerings.delete {name}",
                lambda: ops.begin_delete(ref.resource_group, ref.name, name).result(),
            )
        body = m.VirtualNetworkPeering(
            properties=m.VirtualNetworkPeeringPropertiesFormat(
                remote_virtual_network=m.SubResource(id=remote_id),
                allow_virtual_network_access=True,
                allow_forwarded_traffic=True,
                allow_gateway_transit=False,
                use_remote_gateways=False,
            )
        )
        self._call(
            f"virtualNetworkPeerings.createOrUpdate {name}",
            lambda: ops.begin_create_or_update(ref.resource_group, ref.name, name, body).result(),
        )
        return f"{name} on {ref.name}"

    def _plan_rules(self, dst: Cluster) -> list[Change]:
        nsg = self._nsg(dst)
        explicit = list(nsg.security_rules or [])
        space = self._vnet_space(dst)
        rules = [r for sr in explicit for r in _rules(dst.name, sr, space)]
        used = {sr.priority for sr in explicit if _s(sr.direction) == "Inbound"}
        by_name = {sr.name: sr for sr in explicit}
        changes = []
        for src in self.clusters:
            if src.name == dst.name:
                continue
            name = f"netconform-from-{src.name}"
            cidrs = network_cidrs(src)
            what = (
                f"nsg {self._nsgs[dst.name].name} rule {name}: tcp/"
                f"{','.join(map(str, self.ports))} from {','.join(cidrs)} (peer {src.name})"
            )
            if all(allows(rules, c, p) for c in cidrs for p in self.ports):
                changes.append(Change("azure", dst.cloud_region, "noop", what, "already allowed"))
                continue
            old = by_name.get(name)
            priority = old.priority if old is not None else _free(used)
            used.add(priority)
            action: Action = "update" if old is not None else "create"
            changes.append(
                Change(
                    "azure",
                    dst.cloud_region,
                    action,
                    what,
                    f"priority {priority}",
                    self._rule_writer(dst, src, name, priority),
                )
            )
        return changes

    def _rule_writer(
        self, dst: Cluster, src: Cluster, name: str, priority: int
    ) -> Callable[[], str]:
        ref = self._nsgs[dst.name]
        body = m.SecurityRule(
            properties=m.SecurityRulePropertiesFormat(
                protocol="Tcp",
                access="Allow",
                direction="Inbound",
                priority=priority,
                source_address_prefixes=list(network_cidrs(src)),
                source_port_range="*",
                destination_address_prefixes=list(network_cidrs(dst)),
                destination_port_ranges=[str(p) for p in self.ports],
                description=f"netconform: peer {src.name}",
            )
        )

        def run() -> str:
            ops = self._client(ref.subscription).security_rules
            self._call(
                f"securityRules.createOrUpdate {name}",
                lambda: ops.begin_create_or_update(
                    ref.resource_group, ref.name, name, body
                ).result(),
            )
            return f"{name} in {ref.name} (priority {priority})"

        return run

    def _vnet_space(self, c: Cluster) -> tuple[str, ...]:
        """What the VirtualNetwork service tag covers: own space plus connected peers'."""
        space = list(network_cidrs(c))
        for p in self._peerings(c):
            if _s(p.peering_state) == "Connected" and p.remote_address_space:
                space += list(p.remote_address_space.address_prefixes or [])
        return tuple(space)

    def apply(self, plan: Sequence[Change], out: TextIO | None = None) -> ApplyReport:
        """Make the plan's changes in order."""
        return apply_changes(plan, out)

    # -- audit input ----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Peerings (state, flags, routed remote space) and NSG rules, read-only."""
        self.preflight()
        views: list[PeeringView] = []
        tables: list[RouteTable] = []
        rules: list[Rule] = []
        by_id = {self._vnets[c.name].id.lower(): c for c in self.clusters}
        for c in self.clusters:
            peerings = self._peerings(c)
            views += [v for p in peerings if (v := _view(c, p, by_id)) is not None]
            routes = tuple(
                Route(prefix, p.name)
                for p in peerings
                if _s(p.peering_state) == "Connected" and p.remote_address_space
                for prefix in p.remote_address_space.address_prefixes or []
            )
            label = f"VNet {self._vnets[c.name].name} in {c.cloud_region} (peering routes)"
            tables.append(RouteTable(c.name, label, routes))
            nsg, space = self._nsg(c), self._vnet_space(c)
            for sr in list(nsg.security_rules or []) + list(nsg.default_security_rules or []):
                rules += _rules(c.name, sr, space)
        return Snapshot(
            cloud="azure",
            clusters=self.clusters,
            peerings=tuple(views),
            route_tables=tuple(tables),
            rules=tuple(rules),
            firewall_labels={
                c.name: f"nsg {self._nsgs[c.name].name} in {c.cloud_region}" for c in self.clusters
            },
            rule_sources={c.name: network_cidrs(c) for c in self.clusters},
            route_destinations={c.name: network_cidrs(c) for c in self.clusters},
        )


def _view(local: Cluster, p: Any, by_id: dict[str, Cluster]) -> PeeringView | None:
    remote_id = (p.remote_virtual_network.id if p.remote_virtual_network else "") or ""
    remote = by_id.get(remote_id.lower())
    if remote is None:
        return None
    state = _s(p.peering_state)
    problem = ""
    if not p.allow_virtual_network_access:
        problem = "does not allow virtual network access"
    elif not p.allow_forwarded_traffic:
        problem = "does not allow forwarded traffic"
    label = f"VNet peering {p.name}"
    return PeeringView(
        local.name, remote.name, str(p.name), label, state, state == "Connected", problem
    )


def _rules(cluster: str, sr: Any, vnet_space: tuple[str, ...]) -> list[Rule]:
    if _s(sr.direction) != "Inbound" or _s(sr.protocol).lower() not in ("tcp", "*"):
        return []
    prefixes = list(sr.source_address_prefixes or []) or [sr.source_address_prefix or ""]
    sources: list[str] = []
    for prefix in prefixes:
        if prefix.lower() in ANY:
            sources.append("0.0.0.0/0")
        elif prefix == "VirtualNetwork":
            sources += vnet_space
        elif prefix and prefix[0].isdigit():
            sources.append(prefix if "/" in prefix else f"{prefix}/32")
    if not sources:
        return []
    specs = list(sr.destination_port_ranges or []) or [sr.destination_port_range or "*"]
    return [
        Rule(
            cluster,
            str(sr.name),
            tuple(sources),
            _ports(specs),
            _s(sr.access) == "Allow",
            int(sr.priority or 0),
        )
    ]


def _ports(specs: list[str]) -> tuple[PortRange, ...]:
    if "*" in specs:
        return ALL_PORTS
    ranges = []
    for spec in specs:
        first, _, last = spec.partition("-")
        ranges.append(PortRange(int(first), int(last or first)))
    return tuple(ranges)


def _find(peerings: list[Any], remote: VNetRef) -> Any:
    for p in peerings:
        rid = p.remote_virtual_network.id if p.remote_virtual_network else ""
        if (rid or "").lower() == remote.id.lower():
            return p
    return None


def _free(used: set[int]) -> int:
    priority = FIRST_PRIORITY
    while priority in used:
        priority += 1
    return priority


def _vnet_ref(c: Cluster) -> VNetRef:
    assert c.network is not None
    net = c.network
    parts = net.id.strip("/").split("/")
    if len(parts) == 8 and parts[0].lower() == "subscriptions":
        return VNetRef(parts[1], parts[3], parts[7])
    if not (net.subscription and net.resource_group):
        raise TopologyError(
            f"cluster {c.name} (cloud azure): network.id: expected a VNet "
            "resource id, or subscription and resource_group beside a name"
        )
    return VNetRef(net.subscription, net.resource_group, net.id)


def _nsg_ref(c: Cluster, vnet: VNetRef) -> VNetRef:
    assert c.network is not None
    if len(c.network.security_groups) != 1:
        raise TopologyError(
            f"cluster {c.name} (cloud azure): network.security_groups: "
            "name the one NSG of the cluster subnets"
        )
    raw = c.network.security_groups[0]
    parts = raw.strip("/").split("/")
    if len(parts) == 8 and parts[0].lower() == "subscriptions":
        return VNetRef(parts[1], parts[3], parts[7])
    return VNetRef(vnet.subscription, vnet.resource_group, raw)


def _default_credential() -> TokenCredential:
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise CloudError("azure: azure-identity is not installed") from None
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def _s(value: Any) -> str:
    """An SDK enum or string as its wire value."""
    return str(getattr(value, "value", value) or "")


def _norm(region: str) -> str:
    return region.replace(" ", "").lower()


def _reason(err: AzureError) -> str:
    error = getattr(err, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or err.message
    first = str(message).splitlines()[0] if message else ""
    return f"{code}: {first}" if code else first
