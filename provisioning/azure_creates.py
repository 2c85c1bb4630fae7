"""The Azure build's creates, one per planned step (resource group, NSG, VNet, AKS cluster,
kubeconfig context), each tagged as it is made; and its teardown: what carries the run's
tags, found by resource group, deleted in dependency order (clusters, VNets, NSGs, then a
group once nothing else is in it); a refusal is named with ARM's error, the rest still go."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

from azure.mgmt.containerservice import models as aks
from azure.mgmt.network import models as net
from azure.mgmt.resource.resources import models as res

from netconform.errors import CloudError
from netconform.topology import Cluster
from netconform.waits import wait_until
from provisioning import kubeconfig
from provisioning.build import (
    MANAGED_BY,
    MANAGER,
    RUN_ID_TAG,
    TOPOLOGY_TAG,
    DestroyReport,
    Found,
    destroy_in_order,
)

if TYPE_CHECKING:
    from provisioning.azure_build import AzureBuilder

POOL = "nodes"
DELETE_ORDER = ("aks cluster", "vnet", "network security group", "resource group")


def create_group(self: AzureBuilder, c: Cluster) -> list[Found]:
    sub, group = self.subscription(c), self.group(c)
    body = res.ResourceGroup(location=c.cloud_region, tags=self.tags(c))
    self.call(
        f"resourceGroups.createOrUpdate {group}",
        lambda: self.client("resource", sub).resource_groups.create_or_update(group, body),
    )
    found = [Found("azure", c.cloud_region, "resource group", group, sub)]
    if group in self.unchecked:  # its permissions could not be read before it existed
        try:
            self.check_permissions(c)
        except CloudError:
            destroy(self, found, None)  # the step fails: the journal never sees the group
            raise
    return found


def create_nsg(self: AzureBuilder, c: Cluster) -> list[Found]:
    sub, group, name = self.subscription(c), self.group(c), self.name(c, "nodes")
    body = net.NetworkSecurityGroup(location=c.cloud_region, tags=self.tags(c))
    ops = self.client("network", sub).network_security_groups
    self.call(
        f"networkSecurityGroups.createOrUpdate {name}",
        lambda: ops.begin_create_or_update(group, name, body).result(),
    )
    return [Found("azure", c.cloud_region, "network security group", name, f"{sub}/{group}")]


def create_vnet(self: AzureBuilder, c: Cluster) -> list[Found]:
    """Azure CNI: one subnet, the whole VNet, for nodes and pods, behind the NSG."""
    assert c.build is not None
    sub, group, name = self.subscription(c), self.group(c), self.name(c)
    nsg_id = (
        f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Network/"
        f"networkSecurityGroups/{self.name(c, 'nodes')}"
    )
    body = net.VirtualNetwork(
        location=c.cloud_region,
        tags=self.tags(c),
        properties=net.VirtualNetworkPropertiesFormat(
            address_space=net.AddressSpace(address_prefixes=[c.build.vpc_cidr]),
            subnets=[
                net.Subnet(
                    name=POOL,
                    properties=net.SubnetPropertiesFormat(
                        address_prefix=c.build.vpc_cidr,
                        network_security_group=net.NetworkSecurityGroup(id=nsg_id),
                    ),
                )
            ],
        ),
    )
    ops = self.client("network", sub).virtual_networks
    self.call(
        f"virtualNetworks.createOrUpdate {name}",
        lambda: ops.begin_create_or_update(group, name, body).result(),
    )
    return [Found("azure", c.cloud_region, "vnet", name, f"{sub}/{group}")]


def create_cluster(self: AzureBuilder, c: Cluster) -> list[Found]:
    """The create is sent without waiting (polling=False); `write_context` waits for it."""
    from provisioning.azure_build import dns_service_ip

    assert c.build is not None
    sub, group, name = self.subscription(c), self.group(c), self.name(c)
    network = aks.ContainerServiceNetworkProfile(network_plugin="azure")
    if c.service_cidrs:
        network.service_cidr = c.service_cidrs[0]
        network.dns_service_ip = dns_service_ip(c.service_cidrs[0])
    pool = aks.ManagedClusterAgentPoolProfile(
        name=POOL,
        count=c.build.node_count,
        vm_size=c.build.machine_type,
        mode="System",
        os_type="Linux",
        type="VirtualMachineScaleSets",
        vnet_subnet_id=f"{self.vnet_id(c)}/subnets/{POOL}",
        tags=self.tags(c),
    )
    body = aks.ManagedCluster(
        location=c.cloud_region,
        tags=self.tags(c),
        identity=aks.ManagedClusterIdentity(type="SystemAssigned"),
        properties=aks.ManagedClusterProperties(
            kubernetes_version=c.build.kubernetes_version,
            dns_prefix=name,
            agent_pool_profiles=[pool],
            network_profile=network,
        ),
    )
    ops = self.client("aks", sub).managed_clusters
    self.call(
        f"managedClusters.createOrUpdate {name}",
        lambda: ops.begin_create_or_update(group, name, body, polling=False),
    )
    return [Found("azure", c.cloud_region, "aks cluster", name, f"{sub}/{group}")]


def wait_succeeded(self: AzureBuilder, c: Cluster, timeout: str, pool: bool) -> None:
    """Poll the cluster (or its pool) until Succeeded, a progress line at each change."""
    seen: list[str] = []
    seconds = float(getattr(self.topology.timeouts, timeout))
    start = time.monotonic()
    kind, label = ("node pool", f"{self.name(c)}/{POOL}") if pool else ("aks cluster", self.name(c))

    def succeeded() -> bool:
        found = self.cluster_info(c)
        props = found.properties if found is not None else None
        if props is None:
            state = "absent"
        elif pool:
            pools = props.agent_pool_profiles or []
            state = str(pools[0].provisioning_state) if pools else "absent"
        else:
            state = str(props.provisioning_state)
        if not seen or seen[-1] != state:
            seen.append(state)
            took = time.monotonic() - start
            print(
                f"  wait   {kind} {label}: {state} after {took:.0f}s ({timeout} {seconds:g}s)",
                file=self.out,
                flush=True,
            )
        if state in ("Failed", "Canceled", "absent", "Deleting"):
            raise CloudError(f"azure: {kind} {label} in {c.cloud_region} is {state}")
        return state == "Succeeded"

    wait_until(
        succeeded,
        timeout=seconds,
        name=timeout,
        interval=min(self.poll, 1.0),
        max_interval=self.poll,
        describe=lambda: f"{kind} {label} is {seen[-1]}",
    )


def write_context(self: AzureBuilder, c: Cluster) -> list[Found]:
    wait_succeeded(self, c, "cluster_ready", pool=False)
    wait_succeeded(self, c, "nodes_ready", pool=True)
    ops = self.client("aks", self.subscription(c)).managed_clusters
    creds = self.call(
        f"managedClusters.listClusterUserCredential {self.name(c)}",
        lambda: ops.list_cluster_user_credentials(self.group(c), self.name(c)),
    )
    if not creds.kubeconfigs:
        raise CloudError(f"azure: aks cluster {self.name(c)} handed out no kubeconfig")
    value = creds.kubeconfigs[0].value
    text = value.decode() if isinstance(value, bytes) else str(value)
    kubeconfig.merge_kubeconfig(self.kubeconfig(), c.context, text)
    return []


# -- teardown -------------------------------------------------------------------------------


def find(
    self: AzureBuilder, run_id: str | None, regions: Sequence[str] | None = None
) -> list[Found]:
    """Every resource group with `managed-by: netconform` and this run id (or, without one,
    this topology's name), and in it the clusters, VNets and NSGs with the same tags."""
    key, value = (RUN_ID_TAG, run_id) if run_id else (TOPOLOGY_TAG, self.topology.name)
    wanted = {MANAGED_BY: MANAGER, key: value}
    found: list[Found] = []
    flt = f"tagName eq '{key}' and tagValue eq '{value}'"
    for sub in self.subscriptions():
        ops = self.client("resource", sub).resource_groups
        groups = self.call("resourceGroups.list", _listed(partial(ops.list, filter=flt)))
        for rg in groups:
            if not _matches(rg.tags, wanted) or (regions and rg.location not in regions):
                continue
            found += _find_in_group(self, sub, rg.name, wanted)
            found.append(Found("azure", rg.location, "resource group", rg.name, sub))
    return found


def _find_in_group(self: AzureBuilder, sub: str, group: str, wanted: dict[str, str]) -> list[Found]:
    network, clusters = self.client("network", sub), self.client("aks", sub).managed_clusters
    found = []
    for kind, lister in (
        ("aks cluster", lambda: clusters.list_by_resource_group(group)),
        ("vnet", lambda: network.virtual_networks.list(group)),
        ("network security group", lambda: network.network_security_groups.list(group)),
    ):
        for item in self.call(f"{kind} list {group}", _listed(lister)):
            if _matches(item.tags, wanted):
                found.append(Found("azure", item.location, kind, item.name, f"{sub}/{group}"))
    return found


def _listed(lister: Callable[[], Any]) -> Callable[[], list[Any]]:
    return lambda: list(lister())


def _matches(tags: dict[str, str] | None, wanted: dict[str, str]) -> bool:
    return all((tags or {}).get(k) == v for k, v in wanted.items())


def destroy(
    self: AzureBuilder, resources: Sequence[Found], out: TextIO | None = None
) -> DestroyReport:
    return destroy_in_order(resources, DELETE_ORDER, lambda item: _delete(self, item), out)


def _delete(self: AzureBuilder, item: Found) -> None:
    sub, _, group = item.parent.partition("/")
    name = item.id
    if item.kind == "resource group":
        _delete_group(self, sub, name)
        return
    network = self.client("network", sub)
    if item.kind == "aks cluster":
        ops = self.client("aks", sub).managed_clusters
        self.call(
            f"managedClusters.delete {name}", lambda: ops.begin_delete(group, name, polling=False)
        )
        get: Callable[[], Any] = lambda: ops.get(group, name)  # noqa: E731
    elif item.kind == "vnet":
        self.call(
            f"virtualNetworks.delete {name}",
            lambda: network.virtual_networks.begin_delete(group, name, polling=False),
        )
        get = lambda: network.virtual_networks.get(group, name)  # noqa: E731
    elif item.kind == "network security group":
        ops_nsg = network.network_security_groups
        self.call(
            f"networkSecurityGroups.delete {name}",
            lambda: ops_nsg.begin_delete(group, name, polling=False),
        )
        get = lambda: ops_nsg.get(group, name)  # noqa: E731
    else:
        raise CloudError(f"azure: no way to delete a {item.kind}")
    _wait_gone(self, f"{item.kind} {name}", get)


def _delete_group(self: AzureBuilder, sub: str, group: str) -> None:
    """Only once empty: ARM deletes a group with all it holds, and what is left is not ours."""
    ops = self.client("resource", sub)
    left = self.call(
        f"resources.listByResourceGroup {group}",
        lambda: [r.name for r in ops.resources.list_by_resource_group(group)],
    )
    if left:
        raise CloudError(
            f"azure: resource group {group} still holds {', '.join(sorted(left))} (not this "
            "build's, or refused above): left in place"
        )
    self.call(
        f"resourceGroups.delete {group}",
        lambda: ops.resource_groups.begin_delete(group, polling=False),
    )
    _wait_gone(self, f"resource group {group}", lambda: ops.resource_groups.get(group))


def _wait_gone(self: AzureBuilder, what: str, get: Callable[[], Any]) -> None:
    wait_until(
        lambda: self.get(what, get) is None,
        timeout=self.topology.timeouts.cluster_deleted,
        name="cluster_deleted",
        interval=min(self.poll, 1.0),
        max_interval=self.poll,
        describe=lambda: f"{what} still there",
    )
