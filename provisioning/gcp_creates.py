"""The GCP build's creates, one per planned step (network, subnet, GKE cluster, kubeconfig
context), each labelled (or, where GCP has no labels, described) as it is made and returned
as what the rollback journal and destroy find."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from google.cloud import compute_v1, container_v1

from netconform.errors import CloudError
from netconform.topology import Cluster
from netconform.waits import wait_until
from provisioning import kubeconfig
from provisioning.build import Found

if TYPE_CHECKING:
    from provisioning.gcp_build import GcpBuilder

API = "https://www.googleapis.com/compute/v1"
POOL = "nodes"


def network_url(project: str, name: str) -> str:
    return f"{API}/projects/{project}/global/networks/{name}"


def create_network(self: GcpBuilder, c: Cluster) -> list[Found]:
    project, name = self.project(c), self.name(c)
    body = compute_v1.Network(
        name=name,
        auto_create_subnetworks=False,
        description=self.description(c, f"network of {c.name}"),
        routing_config=compute_v1.NetworkRoutingConfig(routing_mode="REGIONAL"),
    )
    what = f"networks.insert {name}"
    op = self.call(
        what,
        lambda: self.client("NetworksClient").insert_unary(project=project, network_resource=body),
    )
    found = [Found("gcp", "global", "network", name, project)]
    self.wait_op(project, op, what)
    return found


def create_subnet(self: GcpBuilder, c: Cluster) -> list[Found]:
    """VPC-native: the nodes take the primary range, pods and services the secondary ones."""
    assert c.build is not None
    project, name = self.project(c), self.name(c)
    secondary = [
        compute_v1.SubnetworkSecondaryRange(range_name="pods", ip_cidr_range=c.pod_cidrs[0])
    ]
    if c.service_cidrs:
        secondary.append(
            compute_v1.SubnetworkSecondaryRange(
                range_name="services", ip_cidr_range=c.service_cidrs[0]
            )
        )
    body = compute_v1.Subnetwork(
        name=name,
        network=network_url(project, name),
        ip_cidr_range=c.build.vpc_cidr,
        secondary_ip_ranges=secondary,
        private_ip_google_access=True,
        description=self.description(c, f"nodes, pods and services of {c.name}"),
    )
    what = f"subnetworks.insert {name}"
    op = self.call(
        what,
        lambda: self.client("SubnetworksClient").insert_unary(
            project=project, region=c.cloud_region, subnetwork_resource=body
        ),
    )
    found = [Found("gcp", c.cloud_region, "subnet", name, project)]
    self.wait_op(project, op, what, region=c.cloud_region)
    return found


def create_cluster(self: GcpBuilder, c: Cluster) -> list[Found]:
    """The create returns an operation at once; `write_context` waits for RUNNING."""
    assert c.build is not None
    name, labels = self.name(c), self.labels(c)
    policy = container_v1.IPAllocationPolicy(
        use_ip_aliases=True,
        cluster_secondary_range_name="pods",
        services_secondary_range_name="services" if c.service_cidrs else "",
    )
    pool = container_v1.NodePool(
        name=POOL,
        initial_node_count=c.build.node_count,
        config=container_v1.NodeConfig(machine_type=c.build.machine_type, resource_labels=labels),
    )
    cluster = container_v1.Cluster(
        name=name,
        description=f"netconform: {c.name} of {self.topology.name}",
        network=name,
        subnetwork=name,
        initial_cluster_version=c.build.kubernetes_version,
        locations=[self.zones[c.name]],
        resource_labels=labels,
        ip_allocation_policy=policy,
        node_pools=[pool],
    )
    self.call(
        f"clusters.create {name}",
        lambda: self.client("gke").create_cluster(parent=self.path(c), cluster=cluster),
    )
    return [Found("gcp", c.cloud_region, "gke cluster", name, self.project(c))]


def wait_running(self: GcpBuilder, c: Cluster, timeout: str, pool: bool) -> container_v1.Cluster:
    """Poll the cluster (or its node pool) until RUNNING, a progress line at each change;
    ERROR or DEGRADED stops it with GKE's status message."""
    seen: list[str] = []
    seconds = float(getattr(self.topology.timeouts, timeout))
    start = time.monotonic()
    kind, label = ("node pool", f"{self.name(c)}/{POOL}") if pool else ("gke cluster", self.name(c))
    last: list[container_v1.Cluster] = []

    def running() -> bool:
        found = self.cluster_info(c)
        if found is None:
            status, message = "absent", ""
        elif pool:
            first = found.node_pools[0] if found.node_pools else None
            status = first.status.name if first else "absent"
            message = first.status_message if first else ""
        else:
            status, message = found.status.name, found.status_message
        if not seen or seen[-1] != status:
            seen.append(status)
            took = time.monotonic() - start
            print(
                f"  wait   {kind} {label}: {status} after {took:.0f}s ({timeout} {seconds:g}s)",
                file=self.out,
                flush=True,
            )
        if status in ("ERROR", "DEGRADED", "absent", "STOPPING"):
            raise CloudError(f"gcp: {kind} {label} in {c.cloud_region} is {status}: {message}")
        if found is not None:
            last[:] = [found]
        return status == "RUNNING"

    wait_until(
        running,
        timeout=seconds,
        name=timeout,
        interval=min(self.poll, 1.0),
        max_interval=self.poll,
        describe=lambda: f"{kind} {label} is {seen[-1]}",
    )
    return last[0]


def write_context(self: GcpBuilder, c: Cluster) -> list[Found]:
    """Once the cluster and its nodes are RUNNING (clusters come up side by side)."""
    wait_running(self, c, "cluster_ready", pool=False)
    found = wait_running(self, c, "nodes_ready", pool=True)
    kubeconfig.write_gke_context(
        self.kubeconfig(),
        c.context,
        project=self.project(c),
        location=c.cloud_region,
        cluster=self.name(c),
        endpoint=found.endpoint,
        ca_data=found.master_auth.cluster_ca_certificate,
    )
    return []
