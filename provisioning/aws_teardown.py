"""The AWS build's teardown: what carries the run's tags, found in every region and IAM, and
deleted in dependency order; a resource that refuses is named with AWS's error and the rest
still go."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from netconform.errors import CloudError
from netconform.waits import wait_until
from provisioning.aws_creates import ROLE_PATH
from provisioning.build import (
    MANAGED_BY,
    MANAGER,
    RUN_ID_TAG,
    TOPOLOGY_TAG,
    DestroyReport,
    Found,
    destroy_in_order,
)

DELETE_ORDER = (
    "vpc peering",
    "node group",
    "eks cluster",
    "security group",
    "subnet",
    "route table",
    "internet gateway",
    "vpc",
    "iam role",
)
#: kind -> (EC2 delete operation, its id parameter)
EC2_DELETES = {
    "vpc peering": ("delete_vpc_peering_connection", "VpcPeeringConnectionId"),
    "security group": ("delete_security_group", "GroupId"),
    "subnet": ("delete_subnet", "SubnetId"),
    "route table": ("delete_route_table", "RouteTableId"),
    "internet gateway": ("delete_internet_gateway", "InternetGatewayId"),
    "vpc": ("delete_vpc", "VpcId"),
}


def _matches(tags: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in wanted.items())


if TYPE_CHECKING:
    from provisioning.aws_build import AwsBuilder


# -- destroy --------------------------------------------------------------------------


def find(self: AwsBuilder, run_id: str | None, regions: Sequence[str] | None = None) -> list[Found]:
    """Every resource with `managed-by: netconform` and this run id (or, without one,
    this topology's name), in `regions` (default: the topology's), plus IAM roles."""
    key, value = (RUN_ID_TAG, run_id) if run_id else (TOPOLOGY_TAG, self.topology.name)
    filters = [
        {"Name": f"tag:{MANAGED_BY}", "Values": [MANAGER]},
        {"Name": f"tag:{key}", "Values": [value]},
    ]
    wanted = {MANAGED_BY: MANAGER, key: value}
    found: list[Found] = []
    for region in regions or sorted({c.cloud_region for c in self.clusters}):
        found += _find_region(self, region, filters, wanted)
    found += _find_roles(self, wanted)
    unique = {(f.kind, f.id): f for f in found}  # a peering shows in both its regions
    return list(unique.values())


def _find_region(
    self: AwsBuilder, region: str, filters: list[dict[str, Any]], wanted: dict[str, str]
) -> list[Found]:
    found: list[Found] = []
    for kind, op, key, id_key in (
        (
            "vpc peering",
            "describe_vpc_peering_connections",
            "VpcPeeringConnections",
            "VpcPeeringConnectionId",
        ),
        ("security group", "describe_security_groups", "SecurityGroups", "GroupId"),
        ("subnet", "describe_subnets", "Subnets", "SubnetId"),
        ("route table", "describe_route_tables", "RouteTables", "RouteTableId"),
        (
            "internet gateway",
            "describe_internet_gateways",
            "InternetGateways",
            "InternetGatewayId",
        ),
        ("vpc", "describe_vpcs", "Vpcs", "VpcId"),
    ):
        items = self.request("ec2", region, op, Filters=filters)[key]
        for item in items:
            if kind == "vpc peering" and item["Status"]["Code"] in ("deleted", "deleting"):
                continue
            parent = ",".join(a["VpcId"] for a in item.get("Attachments", []))
            found.append(Found("aws", region, kind, item[id_key], parent))
    for name in self.call("eks", region, lambda eks: eks.list_clusters()["clusters"]):
        cluster = self.request("eks", region, "describe_cluster", name=name)
        if not _matches(cluster["cluster"].get("tags", {}), wanted):
            continue
        for ng in self.request("eks", region, "list_nodegroups", clusterName=name)["nodegroups"]:
            group = self.request(
                "eks", region, "describe_nodegroup", clusterName=name, nodegroupName=ng
            )
            if _matches(group["nodegroup"].get("tags", {}), wanted):
                found.append(Found("aws", region, "node group", ng, name))
        found.append(Found("aws", region, "eks cluster", name))
    return found


def _find_roles(self: AwsBuilder, wanted: dict[str, str]) -> list[Found]:
    roles = self.call("iam", "us-east-1", lambda iam: iam.list_roles(PathPrefix=ROLE_PATH)["Roles"])
    found = []
    for role in roles:
        name = role["RoleName"]
        tags = self.request("iam", "us-east-1", "list_role_tags", RoleName=name)
        if _matches({t["Key"]: t["Value"] for t in tags["Tags"]}, wanted):
            found.append(Found("aws", "global", "iam role", name))
    return found


def destroy(
    self: AwsBuilder, resources: Sequence[Found], out: TextIO | None = None
) -> DestroyReport:
    """Delete in dependency order; a refusal is named with the cloud's error and the
    rest still go."""
    return destroy_in_order(resources, DELETE_ORDER, lambda item: _delete(self, item), out)


def _delete(self: AwsBuilder, item: Found) -> None:
    region, rid = item.region, item.id
    if item.kind == "node group":
        self.request("eks", region, "delete_nodegroup", clusterName=item.parent, nodegroupName=rid)
        _wait_gone(self, region, "describe_nodegroup", clusterName=item.parent, nodegroupName=rid)
    elif item.kind == "eks cluster":
        self.request("eks", region, "delete_cluster", name=rid)
        _wait_gone(self, region, "describe_cluster", name=rid)
    elif item.kind == "iam role":
        _delete_role(self, rid)
    elif item.kind in EC2_DELETES:
        if item.kind == "route table":
            _disassociate(self, region, rid)
        if item.kind == "internet gateway":
            for vpc in filter(None, item.parent.split(",")):
                self.request(
                    "ec2", region, "detach_internet_gateway", InternetGatewayId=rid, VpcId=vpc
                )
        op, param = EC2_DELETES[item.kind]
        self.request("ec2", region, op, **{param: rid})
    else:
        raise CloudError(f"aws: no way to delete a {item.kind}")


def _disassociate(self: AwsBuilder, region: str, rtb: str) -> None:
    """A route table goes only once no subnet uses it (AWS: DependencyViolation)."""
    tables = self.request("ec2", region, "describe_route_tables", RouteTableIds=[rtb])
    for table in tables["RouteTables"]:
        for assoc in table.get("Associations", []):
            if not assoc.get("Main"):
                self.request(
                    "ec2",
                    region,
                    "disassociate_route_table",
                    AssociationId=assoc["RouteTableAssociationId"],
                )


def _wait_gone(self: AwsBuilder, region: str, op: str, **kw: str) -> None:
    def gone() -> bool:
        try:
            self.call("eks", region, lambda cl: getattr(cl, op)(**kw))
        except CloudError as err:
            if "ResourceNotFoundException" in str(err):
                return True
            raise
        return False

    what = " ".join(kw.values())
    wait_until(
        gone,
        timeout=self.topology.timeouts.cluster_deleted,
        name="cluster_deleted",
        interval=min(self.poll, 1.0),
        max_interval=self.poll,
        describe=lambda: f"{what} still there",
    )


def _delete_role(self: AwsBuilder, name: str) -> None:
    attached = self.call(
        "iam",
        "us-east-1",
        lambda iam: iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"],
    )
    for policy in attached:
        self.request(
            "iam",
            "us-east-1",
            "detach_role_policy",
            RoleName=name,
            PolicyArn=policy["PolicyArn"],
        )
    self.call("iam", "us-east-1", lambda iam: iam.delete_role(RoleName=name))
