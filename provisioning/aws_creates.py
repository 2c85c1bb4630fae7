"""The AWS build's creates, one per planned step (VPC, gateway, route table, subnets, security
group, IAM roles, the EKS cluster and node group, the kubeconfig context), each tagged as it
is made and returned as what the rollback journal and destroy find."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from netconform.errors import CloudError
from netconform.topology import Cluster
from netconform.waits import wait_until
from provisioning import kubeconfig
from provisioning.build import (
    Found,
)

ROLE_PATH = "/netconform/"


def _trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


if TYPE_CHECKING:
    from provisioning.aws_build import AwsBuilder


# -- creates --------------------------------------------------------------------------


def _create_vpc(self: AwsBuilder, c: Cluster) -> list[Found]:
    assert c.build is not None
    cidr = c.build.vpc_cidr
    vpc = self.call(
        "ec2",
        c.cloud_region,
        lambda ec2: ec2.create_vpc(
            CidrBlock=cidr, TagSpecifications=self._spec("vpc", c.name, self.name(c))
        )["Vpc"]["VpcId"],
    )
    self._ids[c.name]["vpc"] = vpc
    found = [Found("aws", c.cloud_region, "vpc", vpc)]
    for attr in ("EnableDnsSupport", "EnableDnsHostnames"):  # EKS nodes need both
        self.request(
            "ec2", c.cloud_region, "modify_vpc_attribute", VpcId=vpc, **{attr: {"Value": True}}
        )
    return found


def _create_igw(self: AwsBuilder, c: Cluster) -> list[Found]:
    ids = self._ids[c.name]
    igw = self.call(
        "ec2",
        c.cloud_region,
        lambda ec2: ec2.create_internet_gateway(
            TagSpecifications=self._spec("internet-gateway", c.name, self.name(c))
        )["InternetGateway"]["InternetGatewayId"],
    )
    ids["igw"] = igw
    found = [Found("aws", c.cloud_region, "internet gateway", igw, ids["vpc"])]
    self.call(
        "ec2",
        c.cloud_region,
        lambda ec2: ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=ids["vpc"]),
    )
    return found


def _create_rtb(self: AwsBuilder, c: Cluster) -> list[Found]:
    ids = self._ids[c.name]
    rtb = self.call(
        "ec2",
        c.cloud_region,
        lambda ec2: ec2.create_route_table(
            VpcId=ids["vpc"], TagSpecifications=self._spec("route-table", c.name, self.name(c))
        )["RouteTable"]["RouteTableId"],
    )
    ids["rtb"] = rtb
    self.call(
        "ec2",
        c.cloud_region,
        lambda ec2: ec2.create_route(
            RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=ids["igw"]
        ),
    )
    return [Found("aws", c.cloud_region, "route table", rtb)]


def _create_subnet(self: AwsBuilder, c: Cluster, index: int, cidr: str) -> list[Found]:
    ids = self._ids[c.name]
    zone = self._zones[c.name][index]
    spec = self._spec("subnet", c.name, self.name(c, zone[-1:]), **{"kubernetes.io/role/elb": "1"})
    subnet = self.call(
        "ec2",
        c.cloud_region,
        lambda ec2: ec2.create_subnet(
            VpcId=ids["vpc"], CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=spec
        )["Subnet"]["SubnetId"],
    )
    ids[f"subnet{index}"] = subnet
    found = [Found("aws", c.cloud_region, "subnet", subnet)]
    self.call(
        "ec2",
        c.cloud_region,
        lambda ec2: ec2.associate_route_table(RouteTableId=ids["rtb"], SubnetId=subnet),
    )
    self.call(
        "ec2",
        c.cloud_region,
        lambda ec2: ec2.modify_subnet_attribute(
            SubnetId=subnet, MapPublicIpOnLaunch={"Value": True}
        ),
    )
    return found


def _create_sg(self: AwsBuilder, c: Cluster) -> list[Found]:
    ids = self._ids[c.name]
    sg = self.call(
        "ec2",
        c.cloud_region,
        lambda ec2: ec2.create_security_group(
            GroupName=self.name(c, "nodes"),
            Description=f"netconform: nodes of {c.name}",
            VpcId=ids["vpc"],
            TagSpecifications=self._spec("security-group", c.name, self.name(c, "nodes")),
        )["GroupId"],
    )
    ids["sg"] = sg
    return [Found("aws", c.cloud_region, "security group", sg)]


def _create_role(
    self: AwsBuilder, c: Cluster, role: str, name: str, service: str, policies: Sequence[str]
) -> list[Found]:
    tags = [{"Key": k, "Value": v} for k, v in self._tags(c.name).items()]
    arn = self.call(
        "iam",
        "us-east-1",
        lambda iam: iam.create_role(
            RoleName=name, Path=ROLE_PATH, AssumeRolePolicyDocument=_trust(service), Tags=tags
        )["Role"]["Arn"],
    )
    self._ids[c.name][f"role-{role}"] = arn
    for policy in policies:
        self.request(
            "iam",
            "us-east-1",
            "attach_role_policy",
            RoleName=name,
            PolicyArn=f"arn:aws:iam::aws:policy/{policy}",
        )
    return [Found("aws", "global", "iam role", name)]


def _create_cluster(self: AwsBuilder, c: Cluster) -> list[Found]:
    assert c.build is not None
    ids, name = self._ids[c.name], self.name(c)
    network: dict[str, Any] = {"ipFamily": "ipv4"}
    if c.service_cidrs:
        network["serviceIpv4Cidr"] = c.service_cidrs[0]
    self.call(
        "eks",
        c.cloud_region,
        lambda eks: eks.create_cluster(
            name=name,
            version=c.build.kubernetes_version if c.build else None,
            roleArn=ids["role-cluster"],
            resourcesVpcConfig={
                "subnetIds": [ids["subnet0"], ids["subnet1"]],
                "securityGroupIds": [ids["sg"]],
                "endpointPublicAccess": True,
            },
            kubernetesNetworkConfig=network,
            tags=self._tags(c.name),
        ),
    )
    return [Found("aws", c.cloud_region, "eks cluster", name)]


def _create_nodes(self: AwsBuilder, c: Cluster) -> list[Found]:
    assert c.build is not None
    ids, cluster, name = self._ids[c.name], self.name(c), self.name(c, "nodes")
    _wait_status(
        self,
        c,
        "cluster_ready",
        "eks cluster",
        cluster,
        "describe_cluster",
        "cluster",
        name=cluster,
    )
    count = c.build.node_count
    self.call(
        "eks",
        c.cloud_region,
        lambda eks: eks.create_nodegroup(
            clusterName=cluster,
            nodegroupName=name,
            scalingConfig={"minSize": count, "maxSize": count, "desiredSize": count},
            subnets=[ids["subnet0"], ids["subnet1"]],
            instanceTypes=[c.build.machine_type if c.build else ""],
            nodeRole=ids["role-nodes"],
            tags=self._tags(c.name),
        ),
    )
    return [Found("aws", c.cloud_region, "node group", name, cluster)]


def _wait_status(
    self: AwsBuilder, c: Cluster, timeout: str, kind: str, label: str, op: str, key: str, **kw: str
) -> None:
    """Poll until ACTIVE with a progress line at each change of status; FAILED stops it."""
    seen: list[str] = []
    seconds = float(getattr(self.topology.timeouts, timeout))
    start = time.monotonic()

    def active() -> bool:
        found = self._describe(c, op, key, **kw)
        status = str(found["status"]) if found else "absent"
        if not seen or seen[-1] != status:
            seen.append(status)
            took = time.monotonic() - start
            print(
                f"  wait   {kind} {label}: {status} after {took:.0f}s ({timeout} {seconds:g}s)",
                file=self.out,
                flush=True,
            )
        if status in ("FAILED", "CREATE_FAILED", "DEGRADED"):
            health = (found or {}).get("health", {})
            raise CloudError(f"aws: {kind} {label} in {c.cloud_region} is {status}: {health}")
        return status == "ACTIVE"

    wait_until(
        active,
        timeout=seconds,
        name=timeout,
        interval=min(self.poll, 1.0),
        max_interval=self.poll,
        describe=lambda: f"{kind} {label} is {seen[-1]}",
    )


def _write_context(self: AwsBuilder, c: Cluster) -> list[Found]:
    """Once the nodes are up (node groups come up side by side, like the clusters)."""
    cluster, nodes = self.name(c), self.name(c, "nodes")
    _wait_status(
        self,
        c,
        "nodes_ready",
        "node group",
        nodes,
        "describe_nodegroup",
        "nodegroup",
        clusterName=cluster,
        nodegroupName=nodes,
    )
    found = self._describe(c, "describe_cluster", "cluster", name=self.name(c))
    if found is None:
        raise CloudError(f"aws: eks cluster {self.name(c)} vanished before its context")
    kubeconfig.write_eks_context(
        self._kubeconfig(),
        c.context,
        arn=str(found["arn"]),
        cluster=self.name(c),
        region=c.cloud_region,
        server=str(found["endpoint"]),
        ca_data=str(found["certificateAuthority"]["data"]),
    )
    return []
