"""Building seed 000 on AWS through boto3: per cluster a VPC with two subnets in two zones,
an internet gateway and route table, a node security group, the EKS cluster and node IAM
roles, the EKS cluster and its managed node group (VPC CNI: pods take VPC addresses), a
kubeconfig context; then the existing glue (provisioning.aws) peers, routes and opens ports.

Every create tags what it makes as it makes it (TagSpecifications, Tags), so a run killed
between two calls leaves nothing that `destroy --run-id` cannot find.
"""

from __future__ import annotations

import ipaddress
import sys
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
from provisioning import aws_creates, aws_teardown, kubeconfig
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
    is_loopback_endpoint,
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
DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)


class AwsBuilder:
    """Plans, builds and destroys the topology's `cloud: aws` clusters that have a build."""

    cloud = "aws"
    glue_kinds: tuple[str, ...] = ("vpc peering",)

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

    def on_loopback(self) -> bool:
        """boto3's endpoint (this builder's, else its own AWS_ENDPOINT_URL settings) is here."""
        import os

        url = self._endpoint or os.environ.get("AWS_ENDPOINT_URL_EC2")
        return is_loopback_endpoint(url or os.environ.get("AWS_ENDPOINT_URL"))

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
                lambda: aws_creates._create_vpc(self, c),
            ),
            self._step(
                c,
                "internet gateway",
                self.name(c),
                ids.get("igw", ""),
                "",
                lambda: aws_creates._create_igw(self, c),
            ),
            self._step(
                c,
                "route table",
                self.name(c),
                ids.get("rtb", ""),
                "0.0.0.0/0 via the internet gateway",
                lambda: aws_creates._create_rtb(self, c),
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
                    partial(partial(aws_creates._create_subnet, self), c, i, cidr),
                )
            )
        steps.append(
            self._step(
                c,
                "security group",
                self.name(c, "nodes"),
                ids.get("sg", ""),
                "nodes; the glue opens the ports",
                lambda: aws_creates._create_sg(self, c),
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
                    partial(
                        partial(aws_creates._create_role, self), c, role, name, service, policies
                    ),
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
        step = self._step(
            c, "eks cluster", name, have, detail, lambda: aws_creates._create_cluster(self, c)
        )
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
        step = self._step(
            c, "node group", name, have, detail, lambda: aws_creates._create_nodes(self, c)
        )
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
            lambda: aws_creates._write_context(self, c),
        )

    def _kubeconfig(self) -> Path:
        return self.kubeconfig_path or kubeconfig.default_path(self.topology)

    # -- creates (provisioning/aws_creates.py) and teardown (provisioning/aws_teardown.py) ----

    def find(self, run_id: str | None, regions: Sequence[str] | None = None) -> list[Found]:
        """Every resource this run (or, without a run id, this topology) tagged; see
        `aws_teardown.find`."""
        return aws_teardown.find(self, run_id, regions)

    def destroy(self, resources: Sequence[Found], out: TextIO | None = None) -> DestroyReport:
        """Delete `resources` in dependency order; see `aws_teardown.destroy`."""
        return aws_teardown.destroy(self, resources, out)

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
