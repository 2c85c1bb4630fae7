"""Building seed 000 on AWS through boto3: per cluster a VPC with two subnets in two zones,
an internet gateway and route table, a node security group, the EKS cluster and node IAM
roles, the EKS cluster and its managed node group (VPC CNI: pods take VPC addresses), a
kubeconfig context; then the existing glue (provisioning.aws) peers, routes and opens ports.

Every create tags what it makes as it makes it (TagSpecifications, Tags), so a run killed
between two calls leaves nothing that `destroy --run-id` cannot find.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TextIO, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from netconform.errors import CloudError, TopologyError
from netconform.topology import CloudNetwork, Cluster, Topology
from netconform.waits import wait_until
from provisioning import kubeconfig
from provisioning.aws import AwsProvider
from provisioning.build import (
    CLUSTER_TAG,
    MANAGED_BY,
    MANAGER,
    RUN_ID_TAG,
    TOPOLOGY_TAG,
    DestroyReport,
    Found,
    Step,
    build_tags,
    built_clusters,
)
from provisioning.cloud import print_plan

T = TypeVar("T")
Client = Any
#: Minor versions EKS offers for new clusters (standard and extended support).
EKS_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33")
#: Seconds each create usually takes on AWS (EKS: control plane ~10 min, nodes ~4 min).
ESTIMATES = {
    "vpc": 5.0,
    "internet gateway": 5.0,
    "route table": 3.0,
    "subnet": 3.0,
    "security group": 3.0,
    "iam role": 10.0,
    "eks cluster": 600.0,
    "node group": 240.0,
    "kubeconfig context": 1.0,
}
#: Deletion order: what uses a resource goes before it.
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
DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
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


class AwsBuilder:
    """Plans, builds and destroys the topology's `cloud: aws` clusters that have a build."""

    cloud = "aws"

    def __init__(
        self,
        topology: Topology,
        run_id: str,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        kubeconfig_path: Path | None = None,
        poll: float = 10.0,
    ) -> None:
        self.topology = topology
        self.clusters = built_clusters(topology, "aws")
        self.run_id = run_id
        self._session = session or boto3.Session()
        self._endpoint = endpoint_url
        self._clients: dict[tuple[str, str], Client] = {}
        self._ids: dict[str, dict[str, str]] = {c.name: {} for c in self.clusters}
        self._zones: dict[str, list[str]] = {}
        self.kubeconfig_path = kubeconfig_path
        self.poll = poll
        self.out: TextIO = sys.stdout
        """Where progress lines go."""

    # -- plumbing -------------------------------------------------------------------------

    def client(self, service: str, region: str) -> Client:
        key = (service, region)
        if key not in self._clients:
            config = Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=60)
            self._clients[key] = self._session.client(
                service, region_name=region, endpoint_url=self._endpoint, config=config
            )
        return self._clients[key]

    def call(self, service: str, region: str, fn: Callable[[Client], T]) -> T:
        """One SDK call; its failure as one line naming the permission or the reason."""
        try:
            return fn(self.client(service, region))
        except ClientError as err:
            raise CloudError(_client_error(err, service, region)) from None
        except (NoCredentialsError, NoRegionError):
            raise CloudError("aws: no credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)") from None
        except EndpointConnectionError as err:
            raise CloudError(f"aws: cannot reach {service} in {region}: {err}") from None
        except BotoCoreError as err:
            raise CloudError(f"aws: {service} in {region}: {err}") from None

    def request(self, service: str, region: str, op: str, **kwargs: Any) -> Any:
        """`call` of one operation by name with keyword arguments."""
        return self.call(service, region, lambda client: getattr(client, op)(**kwargs))

    def _tags(self, cluster: str = "", name: str = "") -> dict[str, str]:
        tags = build_tags(self.run_id, self.topology, cluster)
        if name:
            tags["Name"] = name
        return tags

    def _spec(self, kind: str, cluster: str, name: str, **extra: str) -> list[dict[str, Any]]:
        tags = self._tags(cluster, name) | extra
        return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]

    def _ours(self, cluster: str) -> list[dict[str, Any]]:
        return [
            {"Name": f"tag:{MANAGED_BY}", "Values": [MANAGER]},
            {"Name": f"tag:{TOPOLOGY_TAG}", "Values": [self.topology.name]},
            {"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]},
        ]

    def name(self, c: Cluster, suffix: str = "") -> str:
        return f"{self.topology.name}-{c.name}" + (f"-{suffix}" if suffix else "")

    # -- validation (read-only, before any create) ------------------------------------------

    def validate(self) -> None:
        """Credentials, regions, versions and machine types, one line naming the cluster."""
        if self._session.get_credentials() is None:
            raise CloudError("aws: no credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)")
        known: set[str] = set()
        for partition in self._session.get_available_partitions():
            known.update(self._session.get_available_regions("ec2", partition))
        for c in self.clusters:
            assert c.build is not None
            if c.cloud_region not in known:
                raise TopologyError(
                    f"cluster {c.name}: cloud_region: aws has no region {c.cloud_region!r}"
                )
            if c.build.kubernetes_version not in EKS_VERSIONS:
                raise TopologyError(
                    f"cluster {c.name}: build.kubernetes_version: EKS offers "
                    f"{', '.join(EKS_VERSIONS)}, not {c.build.kubernetes_version!r}"
                )
        for c in self.clusters:
            self._check_machine_type(c)
            self._zones[c.name] = self._two_zones(c)

    def _check_machine_type(self, c: Cluster) -> None:
        assert c.build is not None
        mt = c.build.machine_type
        try:
            self.call(
                "ec2", c.cloud_region, lambda ec2: ec2.describe_instance_types(InstanceTypes=[mt])
            )
        except CloudError as err:
            if "InvalidInstanceType" in str(err):
                raise TopologyError(
                    f"cluster {c.name}: build.machine_type: {c.cloud_region} has no instance "
                    f"type {mt!r}"
                ) from None
            raise

    def _two_zones(self, c: Cluster) -> list[str]:
        zones = self.call(
            "ec2",
            c.cloud_region,
            lambda ec2: ec2.describe_availability_zones(
                Filters=[{"Name": "state", "Values": ["available"]}]
            )["AvailabilityZones"],
        )
        names = sorted(z["ZoneName"] for z in zones)
        if len(names) < 2:
            raise CloudError(f"aws: {c.cloud_region} has fewer than two zones (EKS needs two)")
        return names[:2]

    # -- plan -----------------------------------------------------------------------------

    def plan(self) -> list[Step]:
        """Networks, then roles, then clusters, node groups and contexts: each a create, or a
        noop when a resource with this topology's tags is there already."""
        steps: list[Step] = []
        for c in self.clusters:
            steps += self._plan_network(c)
        for c in self.clusters:
            steps += self._plan_roles(c)
        steps += [self._plan_cluster(c) for c in self.clusters]
        steps += [self._plan_nodegroup(c) for c in self.clusters]
        steps += [self._plan_context(c) for c in self.clusters]
        return steps

    def _find_ec2(self, c: Cluster, op: str, key: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call(
            "ec2", c.cloud_region, lambda ec2: getattr(ec2, op)(Filters=self._ours(c.name))[key]
        )
        for item in found:
            run = {t["Key"]: t["Value"] for t in item.get("Tags", [])}.get(RUN_ID_TAG)
            if run:
                self.run_id = run  # a rebuild keeps the run id of what it finds
        return found

    def _step(
        self,
        c: Cluster,
        kind: str,
        name: str,
        have: str,
        detail: str,
        run: Callable[[], list[Found]],
        region: str = "",
    ) -> Step:
        region = region or c.cloud_region
        if have:
            return Step("aws", region, kind, name, "noop", 0, have)
        return Step("aws", region, kind, name, "create", ESTIMATES[kind], detail, run)

    def _plan_network(self, c: Cluster) -> list[Step]:
        assert c.build is not None
        ids = self._ids[c.name]
        vpcs = self._find_ec2(c, "describe_vpcs", "Vpcs")
        if vpcs:
            ids["vpc"] = vpcs[0]["VpcId"]
        igws = self._find_ec2(c, "describe_internet_gateways", "InternetGateways") if vpcs else []
        if igws:
            ids["igw"] = igws[0]["InternetGatewayId"]
        rtbs = self._find_ec2(c, "describe_route_tables", "RouteTables") if vpcs else []
        if rtbs:
            ids["rtb"] = rtbs[0]["RouteTableId"]
        subnets = self._find_ec2(c, "describe_subnets", "Subnets") if vpcs else []
        by_cidr = {s["CidrBlock"]: s["SubnetId"] for s in subnets}
        sgs = self._find_ec2(c, "describe_security_groups", "SecurityGroups") if vpcs else []
        if sgs:
            ids["sg"] = sgs[0]["GroupId"]
        steps = [
            self._step(
                c,
                "vpc",
                self.name(c),
                ids.get("vpc", ""),
                c.build.vpc_cidr,
                lambda: self._create_vpc(c),
            ),
            self._step(
                c,
                "internet gateway",
                self.name(c),
                ids.get("igw", ""),
                "",
                lambda: self._create_igw(c),
            ),
            self._step(
                c,
                "route table",
                self.name(c),
                ids.get("rtb", ""),
                "0.0.0.0/0 via the internet gateway",
                lambda: self._create_rtb(c),
            ),
        ]
        for i, cidr in enumerate(_subnet_cidrs(c.build.vpc_cidr)):
            ids[f"subnet{i}"] = by_cidr.get(cidr, "")
            zone = self._zones.get(c.name, ["", ""])[i]
            steps.append(
                self._step(
                    c,
                    "subnet",
                    self.name(c, zone[-1:] or str(i)),
                    by_cidr.get(cidr, ""),
                    f"{cidr} in {zone}",
                    partial(self._create_subnet, c, i, cidr),
                )
            )
        steps.append(
            self._step(
                c,
                "security group",
                self.name(c, "nodes"),
                ids.get("sg", ""),
                "nodes; the glue opens the ports",
                lambda: self._create_sg(c),
            )
        )
        return steps

    def _plan_roles(self, c: Cluster) -> list[Step]:
        steps = []
        for role, service, policies in (
            ("cluster", "eks.amazonaws.com", CLUSTER_POLICIES),
            ("nodes", "ec2.amazonaws.com", NODE_POLICIES),
        ):
            name = self.name(c, role)[:64]
            have = self._role_arn(c, name)
            self._ids[c.name][f"role-{role}"] = have
            steps.append(
                self._step(
                    c,
                    "iam role",
                    name,
                    have,
                    f"for {service}: {', '.join(policies)}",
                    partial(self._create_role, c, role, name, service, policies),
                    region="global",
                )
            )
        return steps

    def _role_arn(self, c: Cluster, name: str) -> str:
        iam = "iam"
        try:
            role = self.call(iam, "us-east-1", lambda cl: cl.get_role(RoleName=name)["Role"])
        except CloudError as err:
            if "NoSuchEntity" in str(err):
                return ""
            raise
        tags = self.call(iam, "us-east-1", lambda cl: cl.list_role_tags(RoleName=name)["Tags"])
        self._refuse_foreign(c, "iam role", name, {t["Key"]: t["Value"] for t in tags})
        return str(role["Arn"])

    def _refuse_foreign(self, c: Cluster, kind: str, name: str, tags: dict[str, str]) -> None:
        if tags.get(MANAGED_BY) != MANAGER or tags.get(TOPOLOGY_TAG) != self.topology.name:
            raise CloudError(
                f"aws: {kind} {name} (cluster {c.name}) exists and is not this topology's "
                f"(no {MANAGED_BY}: {MANAGER} and {TOPOLOGY_TAG}: {self.topology.name} tags): "
                "refusing to adopt or replace it"
            )
        if tags.get(RUN_ID_TAG):
            self.run_id = tags[RUN_ID_TAG]

    def _eks(self, c: Cluster) -> Client:
        return self.client("eks", c.cloud_region)

    def _describe(self, c: Cluster, op: str, key: str, **kw: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.call(
                "eks", c.cloud_region, lambda eks: getattr(eks, op)(**kw)[key]
            )
        except CloudError as err:
            if "ResourceNotFoundException" in str(err):
                return None
            raise
        return found

    def _plan_cluster(self, c: Cluster) -> Step:
        assert c.build is not None
        name = self.name(c)
        found = self._describe(c, "describe_cluster", "cluster", name=name)
        have = ""
        if found is not None:
            self._refuse_foreign(c, "eks cluster", name, found.get("tags", {}))
            have = f"{found['status']}, version {found.get('version')}"
        detail = (
            f"version {c.build.kubernetes_version}, {c.build.network_mode}, services "
            f"{', '.join(c.service_cidrs) or 'default'}; up beside the others (cluster_ready)"
        )
        step = self._step(c, "eks cluster", name, have, detail, lambda: self._create_cluster(c))
        return replace(step, concurrent="eks cluster")

    def _plan_nodegroup(self, c: Cluster) -> Step:
        assert c.build is not None
        cluster, name = self.name(c), self.name(c, "nodes")
        found = None
        if self._describe(c, "describe_cluster", "cluster", name=cluster) is not None:
            found = self._describe(
                c, "describe_nodegroup", "nodegroup", clusterName=cluster, nodegroupName=name
            )
        have = ""
        if found is not None:
            self._refuse_foreign(c, "node group", name, found.get("tags", {}))
            have = f"{found['status']}, {found['scalingConfig']['desiredSize']} nodes"
        detail = (
            f"{c.build.node_count} x {c.build.machine_type}, once the cluster is ACTIVE; "
            "up beside the others (nodes_ready)"
        )
        step = self._step(c, "node group", name, have, detail, lambda: self._create_nodes(c))
        return replace(step, concurrent="node group")

    def _plan_context(self, c: Cluster) -> Step:
        path = self._kubeconfig()
        have = "present" if kubeconfig.has_context(path, c.context, self.name(c)) else ""
        return self._step(
            c,
            "kubeconfig context",
            c.context,
            have,
            f"in {path} once the nodes are ACTIVE; token by `aws eks get-token`",
            lambda: self._write_context(c),
        )

    def _kubeconfig(self) -> Path:
        return self.kubeconfig_path or kubeconfig.default_path(self.topology)

    # -- creates --------------------------------------------------------------------------

    def _create_vpc(self, c: Cluster) -> list[Found]:
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

    def _create_igw(self, c: Cluster) -> list[Found]:
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

    def _create_rtb(self, c: Cluster) -> list[Found]:
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

    def _create_subnet(self, c: Cluster, index: int, cidr: str) -> list[Found]:
        ids = self._ids[c.name]
        zone = self._zones[c.name][index]
        spec = self._spec(
            "subnet", c.name, self.name(c, zone[-1:]), **{"kubernetes.io/role/elb": "1"}
        )
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

    def _create_sg(self, c: Cluster) -> list[Found]:
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
        self, c: Cluster, role: str, name: str, service: str, policies: Sequence[str]
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

    def _create_cluster(self, c: Cluster) -> list[Found]:
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

    def _create_nodes(self, c: Cluster) -> list[Found]:
        assert c.build is not None
        ids, cluster, name = self._ids[c.name], self.name(c), self.name(c, "nodes")
        self._wait_status(
            c, "cluster_ready", "eks cluster", cluster, "describe_cluster", "cluster", name=cluster
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
        self, c: Cluster, timeout: str, kind: str, label: str, op: str, key: str, **kw: str
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

    def _write_context(self, c: Cluster) -> list[Found]:
        """Once the nodes are up (node groups come up side by side, like the clusters)."""
        cluster, nodes = self.name(c), self.name(c, "nodes")
        self._wait_status(
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

    # -- the glue -------------------------------------------------------------------------

    def attached(self) -> Topology:
        """The topology as the glue and the suites see it: each cluster's network is the VPC,
        route table and security group this build made."""
        clusters = []
        for c in self.topology.clusters:
            ids = self._ids.get(c.name)
            if ids and c.build is not None:
                net = CloudNetwork(
                    id=ids["vpc"],
                    cidrs=(c.build.vpc_cidr,),
                    route_tables=(ids["rtb"],),
                    security_groups=(self._node_group_sg(c),),
                )
                c = replace(c, network=net)
            clusters.append(c)
        kube = self._kubeconfig()
        return replace(self.topology, clusters=tuple(clusters), kubeconfig=kube)

    def _node_group_sg(self, c: Cluster) -> str:
        """The group managed nodes carry: the cluster security group EKS made (its
        `clusterSecurityGroupId`), else (not yet ACTIVE) the build's own group."""
        found = self._describe(c, "describe_cluster", "cluster", name=self.name(c))
        vpc_config = (found or {}).get("resourcesVpcConfig", {})
        return str(vpc_config.get("clusterSecurityGroupId") or self._ids[c.name]["sg"])

    def glue(self) -> AwsProvider:
        return AwsProvider(self.attached(), self._session, self._endpoint, tags=self._tags())

    def after_apply(self, out: TextIO) -> None:
        provider = self.glue()
        plan = provider.plan()
        print_plan(plan, out)
        print(f"aws: {provider.apply(plan, out).summary()}", file=out)

    def glue_plan(self) -> list[Step]:
        """The glue's changes as build steps: real ones once every VPC exists, else the
        peerings to come."""
        if not all(self._ids[c.name].get(k) for c in self.clusters for k in ("vpc", "rtb", "sg")):
            names = [c.name for c in self.clusters]
            return [
                Step(
                    "aws",
                    a_region,
                    "vpc peering",
                    f"{a}<->{b}",
                    "create",
                    15.0,
                    "then routes and security-group ingress both ways",
                )
                for i, a in enumerate(names)
                for b in names[i + 1 :]
                for a_region in (self.clusters[i].cloud_region,)
            ]
        return [
            Step(
                "aws",
                ch.region,
                "glue",
                ch.resource,
                ch.action,
                0 if ch.action == "noop" else 5,
                ch.detail,
            )
            for ch in self.glue().plan()
        ]

    # -- destroy --------------------------------------------------------------------------

    def find(self, run_id: str | None, regions: Sequence[str] | None = None) -> list[Found]:
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
            found += self._find_region(region, filters, wanted)
        found += self._find_roles(wanted)
        unique = {(f.kind, f.id): f for f in found}  # a peering shows in both its regions
        return list(unique.values())

    def _find_region(
        self, region: str, filters: list[dict[str, Any]], wanted: dict[str, str]
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
            for ng in self.request("eks", region, "list_nodegroups", clusterName=name)[
                "nodegroups"
            ]:
                group = self.request(
                    "eks", region, "describe_nodegroup", clusterName=name, nodegroupName=ng
                )
                if _matches(group["nodegroup"].get("tags", {}), wanted):
                    found.append(Found("aws", region, "node group", ng, name))
            found.append(Found("aws", region, "eks cluster", name))
        return found

    def _find_roles(self, wanted: dict[str, str]) -> list[Found]:
        roles = self.call(
            "iam", "us-east-1", lambda iam: iam.list_roles(PathPrefix=ROLE_PATH)["Roles"]
        )
        found = []
        for role in roles:
            name = role["RoleName"]
            tags = self.request("iam", "us-east-1", "list_role_tags", RoleName=name)
            if _matches({t["Key"]: t["Value"] for t in tags["Tags"]}, wanted):
                found.append(Found("aws", "global", "iam role", name))
        return found

    def destroy(self, resources: Sequence[Found], out: TextIO | None = None) -> DestroyReport:
        """Delete in dependency order; a refusal is named with the cloud's error and the
        rest still go."""
        report = DestroyReport()
        order = {kind: i for i, kind in enumerate(DELETE_ORDER)}
        for item in sorted(resources, key=lambda f: order.get(f.kind, len(order))):
            try:
                self._delete(item)
            except CloudError as err:
                report.refused.append((item, str(err)))
                if out is not None:
                    print(f"  refused {item.label}: {err}", file=out, flush=True)
                continue
            report.removed.append(item)
            if out is not None:
                print(f"  gone   {item.label}", file=out, flush=True)
        return report

    def _delete(self, item: Found) -> None:
        region, rid = item.region, item.id
        if item.kind == "node group":
            self.request(
                "eks", region, "delete_nodegroup", clusterName=item.parent, nodegroupName=rid
            )
            self._wait_gone(
                region, "describe_nodegroup", clusterName=item.parent, nodegroupName=rid
            )
        elif item.kind == "eks cluster":
            self.request("eks", region, "delete_cluster", name=rid)
            self._wait_gone(region, "describe_cluster", name=rid)
        elif item.kind == "iam role":
            self._delete_role(rid)
        elif item.kind in EC2_DELETES:
            if item.kind == "route table":
                self._disassociate(region, rid)
            if item.kind == "internet gateway":
                for vpc in filter(None, item.parent.split(",")):
                    self.request(
                        "ec2", region, "detach_internet_gateway", InternetGatewayId=rid, VpcId=vpc
                    )
            op, param = EC2_DELETES[item.kind]
            self.request("ec2", region, op, **{param: rid})
        else:
            raise CloudError(f"aws: no way to delete a {item.kind}")

    def _disassociate(self, region: str, rtb: str) -> None:
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

    def _wait_gone(self, region: str, op: str, **kw: str) -> None:
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

    def _delete_role(self, name: str) -> None:
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


def _matches(tags: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in wanted.items())


def _subnet_cidrs(vpc_cidr: str) -> list[str]:
    """Two subnets, one per zone, each a quarter of the VPC (the rest left for growth)."""
    net = ipaddress.IPv4Network(vpc_cidr)
    quarters = list(net.subnets(prefixlen_diff=2)) if net.prefixlen <= 26 else [net, net]
    return [str(quarters[0]), str(quarters[1])]


def _client_error(err: ClientError, service: str, region: str) -> str:
    info = err.response.get("Error", {})
    code, msg = str(info.get("Code", "Error")), str(info.get("Message", ""))
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    op = err.operation_name
    if code in DENIED or code.endswith("NotAuthorized") or status == 403:
        return f"aws: permission denied: {service}:{op} in {region} ({code})"
    return f"aws: {service}:{op} in {region} failed ({code}): {msg}"
