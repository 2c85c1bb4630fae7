"""The GCP build's teardown: what carries the run's labels (clusters) or description tags
(networks, subnets, firewalls; the peerings of those networks), found in each project, and
deleted in dependency order; a refusal is named with GCP's error and the rest still go."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from google.cloud import compute_v1

from netconform.errors import CloudError
from netconform.waits import wait_until
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
    from provisioning.gcp_build import GcpBuilder

DELETE_ORDER = ("gke cluster", "firewall", "network peering", "subnet", "network")


def _wanted(self: GcpBuilder, run_id: str | None) -> dict[str, str]:
    from provisioning.gcp_build import label

    if run_id:
        return {MANAGED_BY: MANAGER, RUN_ID_TAG: label(run_id)}
    return {MANAGED_BY: MANAGER, TOPOLOGY_TAG: label(self.topology.name)}


def _matches(tags: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in wanted.items())


def find(self: GcpBuilder, run_id: str | None, regions: Sequence[str] | None = None) -> list[Found]:
    """Every resource with `managed-by: netconform` and this run id (or, without one, this
    topology's name) in the topology's projects (else GOOGLE_CLOUD_PROJECT's), in `regions`
    (default: every region)."""

    wanted = _wanted(self, run_id)
    found: list[Found] = []
    for project in self.projects():
        found += _find_project(self, project, wanted, regions)
    return found


def _find_project(
    self: GcpBuilder, project: str, wanted: dict[str, str], regions: Sequence[str] | None
) -> list[Found]:
    from provisioning.gcp_build import description_tags

    found: list[Found] = []
    clusters = self.call(
        f"clusters.list {project}",
        lambda: self.client("gke").list_clusters(parent=f"projects/{project}/locations/-"),
    )
    for cl in clusters.clusters:
        if _matches(dict(cl.resource_labels), wanted) and _in(cl.location, regions):
            found.append(Found("gcp", cl.location, "gke cluster", cl.name, project))
    nets = self.call(
        f"networks.list {project}",
        lambda: list(self.client("NetworksClient").list(project=project)),
    )
    ours = {n.self_link: n for n in nets if _matches(description_tags(n.description), wanted)}
    fws = self.call(
        f"firewalls.list {project}",
        lambda: list(self.client("FirewallsClient").list(project=project)),
    )
    for fw in fws:
        if _matches(description_tags(fw.description), wanted):
            found.append(Found("gcp", "global", "firewall", fw.name, project))
    for net in ours.values():
        for peering in net.peerings:
            found.append(
                Found("gcp", "global", "network peering", peering.name, f"{project}/{net.name}")
            )
    subnets = self.call(
        f"subnetworks.aggregatedList {project}",
        lambda: list(self.client("SubnetworksClient").aggregated_list(project=project)),
    )
    for scope, listed in subnets:
        region = scope.rsplit("/", 1)[-1]
        for sub in listed.subnetworks:
            if _matches(description_tags(sub.description), wanted) and _in(region, regions):
                found.append(Found("gcp", region, "subnet", sub.name, project))
    found += [Found("gcp", "global", "network", n.name, project) for n in ours.values()]
    return found


def _in(region: str, regions: Sequence[str] | None) -> bool:
    return not regions or region in regions


def destroy(
    self: GcpBuilder, resources: Sequence[Found], out: TextIO | None = None
) -> DestroyReport:
    """Delete in dependency order; a refusal is named with GCP's error, the rest still go."""
    return destroy_in_order(resources, DELETE_ORDER, lambda item: _delete(self, item), out)


def _delete(self: GcpBuilder, item: Found) -> None:
    project, name = item.parent.split("/")[0], item.id
    what = f"{item.kind} {name}"
    op: Any
    if item.kind == "gke cluster":
        path = f"projects/{project}/locations/{item.region}/clusters/{name}"
        self.call(f"clusters.delete {name}", lambda: self.client("gke").delete_cluster(name=path))
        _wait_gone(self, path)
        return
    if item.kind == "firewall":
        op = self.call(
            what,
            lambda: self.client("FirewallsClient").delete_unary(project=project, firewall=name),
        )
    elif item.kind == "network peering":
        network = item.parent.split("/")[1]
        body = compute_v1.NetworksRemovePeeringRequest(name=name)
        op = self.call(
            what,
            lambda: self.client("NetworksClient").remove_peering_unary(
                project=project, network=network, networks_remove_peering_request_resource=body
            ),
        )
    elif item.kind == "subnet":
        op = self.call(
            f"subnetworks.delete {name}",
            lambda: self.client("SubnetworksClient").delete_unary(
                project=project, region=item.region, subnetwork=name
            ),
        )
        self.wait_op(project, op, what, region=item.region)
        return
    elif item.kind == "network":
        op = self.call(
            f"networks.delete {name}",
            lambda: self.client("NetworksClient").delete_unary(project=project, network=name),
        )
    else:
        raise CloudError(f"gcp: no way to delete a {item.kind}")
    self.wait_op(project, op, what)


def _wait_gone(self: GcpBuilder, path: str) -> None:
    def gone() -> bool:
        return (
            self.get(f"clusters.get {path}", lambda: self.client("gke").get_cluster(name=path))
            is None
        )

    wait_until(
        gone,
        timeout=self.topology.timeouts.cluster_deleted,
        name="cluster_deleted",
        interval=min(self.poll, 1.0),
        max_interval=self.poll,
        describe=lambda: f"{path} still there",
    )
