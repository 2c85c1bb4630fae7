"""Building clusters on Azure: per cluster a resource group, a network security group, a VNet
whose one subnet holds nodes and pods (Azure CNI: pods take VNet addresses), the AKS cluster
(azure-mgmt-containerservice) with one system node pool in that subnet, and a kubeconfig
context from listClusterUserCredential as `az aks get-credentials` merges it; then the
existing glue (provisioning.azure) peers the VNets and opens the ports in the NSGs.

Everything created carries the tags (`managed-by: netconform`, the run id, topology and
cluster). Endpoint: NETCONFORM_AZURE_ENDPOINT (default Azure's public Resource Manager), its
CA from REQUESTS_CA_BUNDLE; the subscription from `build.subscription` or AZURE_SUBSCRIPTION_ID.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TextIO, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from netconform.errors import CloudError, TopologyError
from netconform.topology import CloudNetwork, Cluster, Topology
from provisioning import azure_creates, kubeconfig
from provisioning.azure import AzureProvider
from provisioning.azure import _default_credential as default_credential
from provisioning.build import (
    MANAGED_BY,
    MANAGER,
    RUN_ID_TAG,
    TOPOLOGY_TAG,
    DestroyReport,
    Found,
    Step,
    build_tags,
    built_clusters,
    is_loopback_endpoint,
)
from provisioning.cloud import print_plan

T = TypeVar("T")
ENDPOINT_ENV = "NETCONFORM_AZURE_ENDPOINT"
#: Seconds each create usually takes on Azure (an AKS cluster with its pool ~6 min).
ESTIMATES = {
    "resource group": 3.0,
    "network security group": 10.0,
    "vnet": 10.0,
    "aks cluster": 360.0,
    "kubeconfig context": 1.0,
    "vnet peering": 10.0,
}
#: What the build needs, read on each resource group (Microsoft.Authorization permissions).
ACTIONS = (
    "Microsoft.Network/networkSecurityGroups/write",
    "Microsoft.Network/virtualNetworks/write",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/write",
    "Microsoft.ContainerService/managedClusters/write",
    "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
)
BAD_LOCATION = (
    "LocationNotAvailableForResourceType",
    "NoRegisteredProviderFound",
    "InvalidLocation",
)


def endpoint() -> str | None:
    return os.environ.get(ENDPOINT_ENV) or None


class AzureBuilder:
    """Plans, builds and destroys the topology's `cloud: azure` clusters that have a build."""

    cloud = "azure"
    glue_kinds: tuple[str, ...] = ()
    """The glue's peerings and rules live in the VNets and NSGs: they go with them."""
    poll = 10.0

    def __init__(
        self,
        topology: Topology,
        run_id: str,
        credential: TokenCredential | None = None,
        kubeconfig_path: Path | None = None,
        poll: float | None = None,
    ) -> None:
        self.topology = topology
        self.clusters = built_clusters(topology, "azure")
        self.run_id = run_id
        self._credential = credential
        self._clients: dict[tuple[str, str], Any] = {}
        self.kubeconfig_path = kubeconfig_path
        if poll is not None:
            self.poll = poll
        self.out: TextIO = sys.stdout
        self.unchecked: set[str] = set()
        """Resource groups whose permissions are read once they exist (ARM reads them per
        group)."""

    # -- plumbing -------------------------------------------------------------------------

    def on_loopback(self) -> bool:
        return is_loopback_endpoint(endpoint())

    def credential(self) -> TokenCredential:
        if self._credential is None:
            self._credential = default_credential()
        return self._credential

    def client(self, kind: str, subscription: str) -> Any:
        """`resource`, `network`, `aks`, `compute` or `authorization` of a subscription."""
        key = (kind, subscription)
        if key not in self._clients:
            cls = {
                "resource": ResourceManagementClient,
                "network": NetworkManagementClient,
                "aks": ContainerServiceClient,
                "compute": ComputeManagementClient,
                "authorization": AuthorizationManagementClient,
            }[kind]
            kwargs: dict[str, Any] = {"polling_interval": min(self.poll, 5.0)}
            if endpoint():
                kwargs["base_url"] = endpoint()
            if os.environ.get("REQUESTS_CA_BUNDLE"):
                kwargs["connection_verify"] = os.environ["REQUESTS_CA_BUNDLE"]
            self._clients[key] = cls(self.credential(), subscription, **kwargs)
        return self._clients[key]

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """One SDK call; its failure as one line (a 403 names the action ARM names)."""
        return AzureProvider._call(self, what, fn)  # type: ignore[arg-type]

    def get(self, what: str, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except ResourceNotFoundError:
            return None
        except Exception as err:  # everything else worded as `call` words it, not re-sent
            self.call(what, partial(_reraise, err))
            raise

    def subscription(self, c: Cluster | None = None) -> str:
        found = (c.build.subscription if c and c.build else "") or os.environ.get(
            "AZURE_SUBSCRIPTION_ID", ""
        )
        if not found:
            where = f"cluster {c.name}: build.subscription" if c else "azure"
            raise TopologyError(f"{where}: no subscription (set it, or AZURE_SUBSCRIPTION_ID)")
        return found

    def subscriptions(self) -> list[str]:
        return sorted({self.subscription(c) for c in self.clusters}) or [self.subscription()]

    def name(self, c: Cluster, suffix: str = "") -> str:
        return f"{self.topology.name}-{c.name}" + (f"-{suffix}" if suffix else "")

    def group(self, c: Cluster) -> str:
        return self.name(c)

    def tags(self, c: Cluster) -> dict[str, str]:
        return build_tags(self.run_id, self.topology, c.name)

    def vnet_id(self, c: Cluster) -> str:
        return (
            f"/subscriptions/{self.subscription(c)}/resourceGroups/{self.group(c)}/providers/"
            f"Microsoft.Network/virtualNetworks/{self.name(c)}"
        )

    # -- validation (read-only, before any create) ------------------------------------------

    def validate(self) -> None:
        """Subscriptions, regions, versions and VM sizes, one line naming the cluster; then
        the permissions on each resource group that exists already (the others once made)."""
        for c in self.clusters:
            self._check_versions(c)
        for c in self.clusters:
            self._check_size(c)
        for c in self.clusters:
            self.check_permissions(c, before=True)

    def _check_versions(self, c: Cluster) -> None:
        assert c.build is not None
        aks = self.client("aks", self.subscription(c))
        try:
            found = self.call(
                f"kubernetesVersions {c.cloud_region}",
                lambda: aks.managed_clusters.list_kubernetes_versions(c.cloud_region),
            )
        except CloudError as err:
            if any(code in str(err) for code in BAD_LOCATION):
                raise TopologyError(
                    f"cluster {c.name}: cloud_region: azure has no region {c.cloud_region!r} "
                    "offering AKS"
                ) from None
            raise
        offered = [v.version for v in found.values_property or [] if not v.is_preview]
        if c.build.kubernetes_version not in offered:
            raise TopologyError(
                f"cluster {c.name}: build.kubernetes_version: AKS offers {', '.join(offered)} "
                f"in {c.cloud_region}, not {c.build.kubernetes_version!r}"
            )

    def _check_size(self, c: Cluster) -> None:
        assert c.build is not None
        compute = self.client("compute", self.subscription(c))
        sizes = self.call(
            f"vmSizes {c.cloud_region}",
            lambda: [s.name for s in compute.virtual_machine_sizes.list(c.cloud_region)],
        )
        if c.build.machine_type not in sizes:
            raise TopologyError(
                f"cluster {c.name}: build.machine_type: {c.cloud_region} has no VM size "
                f"{c.build.machine_type!r}"
            )

    def check_permissions(self, c: Cluster, before: bool = False) -> None:
        """The actions the build needs, from the permissions on the cluster's group (what
        the caller's role assignments allow there); a group not made yet is read once it is."""
        group = self.group(c)
        auth = self.client("authorization", self.subscription(c))
        perms = self.get(
            f"permissions {group}",
            lambda: list(auth.permissions.list_for_resource_group(group)),
        )
        if perms is None:
            self.unchecked.add(group)
            return
        self.unchecked.discard(group)
        for action in ACTIONS:
            if not any(_allows(p, action) for p in perms):
                when = "before any create" if before else "before anything is built in it"
                raise CloudError(
                    f"azure: missing permission {action} on resource group {group} "
                    f"(Microsoft.Authorization permissions, {when})"
                )

    # -- plan -----------------------------------------------------------------------------

    def _step(
        self,
        c: Cluster,
        kind: str,
        name: str,
        have: str,
        detail: str,
        run: Callable[[], list[Found]],
        concurrent: str = "",
    ) -> Step:
        if have:
            return Step("azure", c.cloud_region, kind, name, "noop", 0, have)
        return Step(
            "azure", c.cloud_region, kind, name, "create", ESTIMATES[kind], detail, run, concurrent
        )

    def _ours(self, c: Cluster, kind: str, name: str, tags: dict[str, str] | None) -> str:
        tags = tags or {}
        if tags.get(MANAGED_BY) != MANAGER or tags.get(TOPOLOGY_TAG) != self.topology.name:
            raise CloudError(
                f"azure: {kind} {name} (cluster {c.name}) exists and is not this topology's "
                f"(no {MANAGED_BY}: {MANAGER} and {TOPOLOGY_TAG}: {self.topology.name} tags): "
                "refusing to adopt or replace it"
            )
        if tags.get(RUN_ID_TAG):
            self.run_id = tags[RUN_ID_TAG]  # a rebuild keeps the run id of what it finds
        return "present"

    def plan(self) -> list[Step]:
        """Groups, NSGs and VNets, then the clusters (side by side), then the contexts."""
        steps: list[Step] = []
        for c in self.clusters:
            steps += self._plan_network(c)
        steps += [self._plan_cluster(c) for c in self.clusters]
        steps += [self._plan_context(c) for c in self.clusters]
        return steps

    def _plan_network(self, c: Cluster) -> list[Step]:
        assert c.build is not None
        sub, group = self.subscription(c), self.group(c)
        rg = self.get(
            f"resourceGroups.get {group}",
            lambda: self.client("resource", sub).resource_groups.get(group),
        )
        have_rg = self._ours(c, "resource group", group, rg.tags) if rg else ""
        net = self.client("network", sub)
        nsg = vnet = None
        if rg is not None:
            nsg = self.get(
                "networkSecurityGroups.get",
                lambda: net.network_security_groups.get(group, self.name(c, "nodes")),
            )
            vnet = self.get(
                "virtualNetworks.get", lambda: net.virtual_networks.get(group, self.name(c))
            )
        return [
            self._step(
                c,
                "resource group",
                group,
                have_rg,
                f"subscription {sub}",
                lambda: azure_creates.create_group(self, c),
            ),
            self._step(
                c,
                "network security group",
                self.name(c, "nodes"),
                self._ours(c, "nsg", self.name(c, "nodes"), nsg.tags) if nsg else "",
                "on the subnet; the glue opens the ports",
                lambda: azure_creates.create_nsg(self, c),
            ),
            self._step(
                c,
                "vnet",
                self.name(c),
                self._ours(c, "vnet", self.name(c), vnet.tags) if vnet else "",
                f"{c.build.vpc_cidr}, subnet nodes {c.build.vpc_cidr} (nodes and pods)",
                lambda: azure_creates.create_vnet(self, c),
            ),
        ]

    def cluster_info(self, c: Cluster) -> Any:
        aks = self.client("aks", self.subscription(c))
        return self.get(
            f"managedClusters.get {self.name(c)}",
            lambda: aks.managed_clusters.get(self.group(c), self.name(c)),
        )

    def _plan_cluster(self, c: Cluster) -> Step:
        assert c.build is not None
        name = self.name(c)
        found = self.cluster_info(c)
        have = ""
        if found is not None:
            self._ours(c, "aks cluster", name, found.tags)
            props = found.properties
            have = f"{props.provisioning_state}, version {props.current_kubernetes_version}"
        services = ", ".join(c.service_cidrs) or "default"
        detail = (
            f"version {c.build.kubernetes_version}, {c.build.network_mode}, services {services}, "
            f"{c.build.node_count} x {c.build.machine_type}; up beside the others (cluster_ready)"
        )
        return self._step(
            c,
            "aks cluster",
            name,
            have,
            detail,
            lambda: azure_creates.create_cluster(self, c),
            "aks cluster",
        )

    def user(self, c: Cluster) -> str:
        return f"clusterUser_{self.group(c)}_{self.name(c)}"

    def _plan_context(self, c: Cluster) -> Step:
        path = self.kubeconfig()
        return self._step(
            c,
            "kubeconfig context",
            c.context,
            "present" if kubeconfig.has_user(path, c.context, self.user(c)) else "",
            f"in {path} once the cluster has Succeeded; from listClusterUserCredential",
            lambda: azure_creates.write_context(self, c),
        )

    def kubeconfig(self) -> Path:
        return self.kubeconfig_path or kubeconfig.default_path(self.topology)

    # -- teardown (provisioning/azure_creates.py) --------------------------------------------

    def find(self, run_id: str | None, regions: Sequence[str] | None = None) -> list[Found]:
        return azure_creates.find(self, run_id, regions)

    def destroy(self, resources: Sequence[Found], out: TextIO | None = None) -> DestroyReport:
        return azure_creates.destroy(self, resources, out)

    # -- the glue -------------------------------------------------------------------------

    def attached(self) -> Topology:
        clusters = []
        for c in self.topology.clusters:
            if c in self.clusters and c.build is not None:
                net = CloudNetwork(
                    id=self.vnet_id(c),
                    cidrs=(c.build.vpc_cidr,),
                    security_groups=(self.name(c, "nodes"),),
                )
                c = replace(c, network=net)
            clusters.append(c)
        return replace(self.topology, clusters=tuple(clusters), kubeconfig=self.kubeconfig())

    def glue(self) -> AzureProvider:
        kwargs: dict[str, Any] = {"polling_interval": min(self.poll, 5.0)}
        if os.environ.get("REQUESTS_CA_BUNDLE"):
            kwargs["connection_verify"] = os.environ["REQUESTS_CA_BUNDLE"]
        return AzureProvider(self.attached(), self.credential(), endpoint(), **kwargs)

    def after_apply(self, out: TextIO) -> None:
        provider = self.glue()
        plan = provider.plan()
        print_plan(plan, out)
        print(f"azure: {provider.apply(plan, out).summary()}", file=out)

    def glue_plan(self) -> list[Step]:
        """The glue's changes once every VNet and NSG exists, else the peerings to come."""
        net = {c.name: self.client("network", self.subscription(c)) for c in self.clusters}
        exists = all(
            self.get("virtualNetworks.get", partial_get(net[c.name], self.group(c), self.name(c)))
            for c in self.clusters
        )
        if not exists:
            names = [c.name for c in self.clusters]
            return [
                Step(
                    "azure",
                    self.clusters[i].cloud_region,
                    "vnet peering",
                    f"{a}<->{b}",
                    "create",
                    ESTIMATES["vnet peering"],
                    "both ways; then NSG rules for the ports",
                )
                for i, a in enumerate(names)
                for b in names[i + 1 :]
            ]
        return [
            Step(
                "azure",
                ch.region,
                "glue",
                ch.resource,
                ch.action,
                0 if ch.action == "noop" else 5,
                ch.detail,
            )
            for ch in self.glue().plan()
        ]


def partial_get(net: Any, group: str, name: str) -> Callable[[], Any]:
    return lambda: net.virtual_networks.get(group, name)


def _allows(permission: Any, action: str) -> bool:
    def hit(patterns: Sequence[str] | None) -> bool:
        return any(fnmatch.fnmatch(action.lower(), p.lower()) for p in patterns or [])

    return hit(permission.actions) and not hit(permission.not_actions)


def dns_service_ip(service_cidr: str) -> str:
    """The cluster DNS address AKS wants inside the service range (its 10th address)."""
    return str(ipaddress.IPv4Network(service_cidr)[10])


def _reraise(err: Exception) -> None:
    raise err
