"""AWS glue through boto3: inter-region VPC peering, routes, security-group ingress.

Every call goes through `_call`, which turns botocore errors into one-line `CloudError`s
(no credentials, unknown region, missing VPC, permission denied).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    WaiterError,
)

from netconform.cidr import pairs, routed_cidrs
from netconform.cloudaudit import (
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
from provisioning.cloud import ApplyReport, Change, apply_changes, cloud_clusters

T = TypeVar("T")
GONE = {"deleted", "deleting", "rejected", "failed", "expired"}
DENIED = {
    "UnauthorizedOperation",
    "AccessDenied",
    "AccessDeniedException",
    "OperationNotPermitted",
    "UnauthorizedAccess",
}
NO_CREDENTIALS = "aws: no credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)"
Ec2 = Any


class AwsProvider:
    """VPC peering for every pair, routes to each peer, SG ingress for the required ports."""

    cloud = "aws"

    def __init__(
        self,
        topology: Topology,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.clusters = cloud_clusters(topology, "aws")
        self._tags = dict(tags or {})  # on every peering it creates, besides its Name
        self.ports = topology.required_ports
        self._session = session or boto3.Session()
        self._endpoint = endpoint_url
        self._clients: dict[str, Ec2] = {}
        self._peering_ids: dict[frozenset[str], str] = {}
        self._checked = False

    # -- plumbing -------------------------------------------------------------------------

    def _ec2(self, region: str) -> Ec2:
        if region not in self._clients:
            config = Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=30
            )
            self._clients[region] = self._session.client(
                "ec2", region_name=region, endpoint_url=self._endpoint, config=config
            )
        return self._clients[region]

    def _call(self, region: str, fn: Callable[[Ec2], T]) -> T:
        try:
            return fn(self._ec2(region))
        except ClientError as err:
            raise CloudError(_client_error(err, region)) from None
        except (NoCredentialsError, NoRegionError):
            raise CloudError(NO_CREDENTIALS) from None
        except EndpointConnectionError as err:
            raise CloudError(f"aws: cannot reach EC2 in {region}: {err}") from None
        except WaiterError as err:
            raise CloudError(f"aws: gave up waiting in {region}: {err.last_response}") from None
        except BotoCoreError as err:
            raise CloudError(f"aws: {region}: {err}") from None

    def _pages(self, region: str, op: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        def run(ec2: Ec2) -> list[dict[str, Any]]:
            pages = ec2.get_paginator(op).paginate(**kwargs)
            return [item for page in pages for item in page.get(key, [])]

        return self._call(region, run)

    def preflight(self) -> None:
        """Credentials, known regions, existing VPCs: read-only, once."""
        if self._checked:
            return
        if self._session.get_credentials() is None:
            raise CloudError(NO_CREDENTIALS)
        known = self._known_regions()
        for c in self.clusters:
            if c.cloud_region not in known:
                raise CloudError(f"aws: unknown region {c.cloud_region!r} for cluster {c.name}")
        for c in self.clusters:
            self._check_vpc(c)
        self._checked = True

    def _known_regions(self) -> set[str]:
        regions: set[str] = set()
        for partition in self._session.get_available_partitions():
            regions.update(self._session.get_available_regions("ec2", partition))
        return regions

    def _check_vpc(self, c: Cluster) -> None:
        vpc = _vpc(c)
        try:
            found = self._pages(c.cloud_region, "describe_vpcs", "Vpcs", VpcIds=[vpc])
        except CloudError as err:
            if "NotFound" in str(err) or "Malformed" in str(err):
                raise CloudError(
                    f"aws: VPC {vpc} of cluster {c.name} does not exist in {c.cloud_region}"
                ) from None
            raise
        if not found:
            raise CloudError(
                f"aws: VPC {vpc} of cluster {c.name} does not exist in {c.cloud_region}"
            )

    # -- reading --------------------------------------------------------------------------

    def _peerings_of(self, c: Cluster) -> list[dict[str, Any]]:
        vpc = _vpc(c)
        found: dict[str, dict[str, Any]] = {}
        for side in ("requester", "accepter"):
            for pcx in self._pages(
                c.cloud_region,
                "describe_vpc_peering_connections",
                "VpcPeeringConnections",
                Filters=[{"Name": f"{side}-vpc-info.vpc-id", "Values": [vpc]}],
            ):
                if pcx["Status"]["Code"] not in GONE:
                    found[pcx["VpcPeeringConnectionId"]] = pcx
        return list(found.values())

    def _peering(self, a: Cluster, b: Cluster) -> dict[str, Any] | None:
        want = {_vpc(a), _vpc(b)}
        for pcx in self._peerings_of(a):
            if {pcx["RequesterVpcInfo"]["VpcId"], pcx["AccepterVpcInfo"]["VpcId"]} == want:
                return pcx
        return None

    def _route_tables(self, c: Cluster) -> list[dict[str, Any]]:
        assert c.network is not None
        ids = list(c.network.route_tables)
        if not ids:
            return self._pages(
                c.cloud_region,
                "describe_route_tables",
                "RouteTables",
                Filters=[{"Name": "vpc-id", "Values": [_vpc(c)]}],
            )
        tables = self._pages(
            c.cloud_region, "describe_route_tables", "RouteTables", RouteTableIds=ids
        )
        for t in tables:
            if t["VpcId"] != _vpc(c):
                raise CloudError(
                    f"aws: route table {t['RouteTableId']} of cluster {c.name} is "
                    f"in {t['VpcId']}, not in {_vpc(c)}"
                )
        return tables

    def _security_groups(self, c: Cluster) -> list[dict[str, Any]]:
        assert c.network is not None
        if not c.network.security_groups:
            raise TopologyError(
                f"cluster {c.name} (cloud aws): network.security_groups: "
                "name the node security group(s)"
            )
        return self._pages(
            c.cloud_region,
            "describe_security_groups",
            "SecurityGroups",
            GroupIds=list(c.network.security_groups),
        )

    # -- plan -----------------------------------------------------------------------------

    def plan(self) -> list[Change]:
        """Peerings first, then routes, then security-group ingress."""
        self.preflight()
        changes = [self._plan_peering(a, b) for a, b in pairs(self.clusters)]
        for c in self.clusters:
            changes += self._plan_routes(c)
        for c in self.clusters:
            changes += self._plan_ingress(c)
        return changes

    def _plan_peering(self, a: Cluster, b: Cluster) -> Change:
        name = f"vpc peering {a.name}<->{b.name} ({_vpc(a)} <-> {_vpc(b)})"
        key = frozenset((a.name, b.name))
        pcx = self._peering(a, b)
        if pcx is None:
            return Change(
                "aws",
                a.cloud_region,
                "create",
                name,
                f"requested from {a.cloud_region}, accepted in {b.cloud_region}",
                lambda: self._create_peering(a, b),
            )
        pid, state = pcx["VpcPeeringConnectionId"], pcx["Status"]["Code"]
        self._peering_ids[key] = pid
        if state == "pending-acceptance":
            acc_region = pcx["AccepterVpcInfo"].get("Region", b.cloud_region)
            return Change(
                "aws",
                acc_region,
                "update",
                name,
                f"accept {pid} in {acc_region}",
                lambda: self._accept(pid, acc_region),
            )
        return Change("aws", a.cloud_region, "noop", name, f"{pid} {state}")

    def _create_peering(self, a: Cluster, b: Cluster) -> str:
        tag = {
            "ResourceType": "vpc-peering-connection",
            "Tags": [
                {"Key": k, "Value": v}
                for k, v in ({"Name": f"netconform-{a.name}-{b.name}"} | self._tags).items()
            ],
        }
        resp = self._call(
            a.cloud_region,
            lambda ec2: ec2.create_vpc_peering_connection(
                VpcId=_vpc(a), PeerVpcId=_vpc(b), PeerRegion=b.cloud_region, TagSpecifications=[tag]
            ),
        )
        pid = resp["VpcPeeringConnection"]["VpcPeeringConnectionId"]
        self._peering_ids[frozenset((a.name, b.name))] = pid
        self._call(
            b.cloud_region,
            lambda ec2: ec2.get_waiter("vpc_peering_connection_exists").wait(
                VpcPeeringConnectionIds=[pid], WaiterConfig={"Delay": 2, "MaxAttempts": 30}
            ),
        )
        self._accept(pid, b.cloud_region)
        return f"{pid} requested in {a.cloud_region}, accepted in {b.cloud_region}"

    def _accept(self, pid: str, region: str) -> str:
        self._call(
            region, lambda ec2: ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pid)
        )
        return f"{pid} accepted in {region}"

    def _plan_routes(self, c: Cluster) -> list[Change]:
        changes = []
        for table in self._route_tables(c):
            routes = {r.get("DestinationCidrBlock"): r for r in table.get("Routes", [])}
            for peer in self._peers(c):
                for cidr in routed_cidrs(peer):
                    changes.append(
                        self._plan_route(c, peer, table["RouteTableId"], cidr, routes.get(cidr))
                    )
        return changes

    def _plan_route(
        self, c: Cluster, peer: Cluster, rtb: str, cidr: str, route: dict[str, Any] | None
    ) -> Change:
        key = frozenset((c.name, peer.name))
        name = f"route {rtb} -> {cidr} (peer {peer.name})"
        pid = self._peering_ids.get(key)
        via = pid or f"the new peering {_pair_name(self.clusters, c, peer)}"
        if route is None:
            return Change(
                "aws",
                c.cloud_region,
                "create",
                name,
                f"via {via}",
                lambda: self._route(c.cloud_region, "create_route", rtb, cidr, key),
            )
        if route.get("VpcPeeringConnectionId") == pid and route.get("State") == "active":
            return Change("aws", c.cloud_region, "noop", name, f"via {pid}")
        now = _target(route)
        return Change(
            "aws",
            c.cloud_region,
            "update",
            name,
            f"{now} -> {via}",
            lambda: self._route(c.cloud_region, "replace_route", rtb, cidr, key),
        )

    def _route(self, region: str, op: str, rtb: str, cidr: str, key: frozenset[str]) -> str:
        pid = self._peering_ids[key]
        self._call(
            region,
            lambda ec2: getattr(ec2, op)(
                RouteTableId=rtb, DestinationCidrBlock=cidr, VpcPeeringConnectionId=pid
            ),
        )
        return f"{rtb} {cidr} via {pid}"

    def _plan_ingress(self, c: Cluster) -> list[Change]:
        groups = self._security_groups(c)
        rules = [r for g in groups for r in _rules(c.name, g)]
        sg = groups[0]["GroupId"]
        changes = []
        for peer in self._peers(c):
            for cidr in peer.pod_cidrs:
                missing = [p for p in self.ports if not allows(rules, cidr, p)]
                ports = ",".join(str(p) for p in (missing or self.ports))
                name = f"security group {sg} ingress tcp/{ports} from {cidr} (peer {peer.name})"
                if not missing:
                    changes.append(Change("aws", c.cloud_region, "noop", name, "already open"))
                    continue
                changes.append(
                    Change(
                        "aws",
                        c.cloud_region,
                        "create",
                        name,
                        "",
                        _authorize(self, c.cloud_region, sg, cidr, peer.name, missing),
                    )
                )
        return changes

    def _peers(self, c: Cluster) -> Iterator[Cluster]:
        return (p for p in self.clusters if p.name != c.name)

    def apply(self, plan: Sequence[Change], out: TextIO | None = None) -> ApplyReport:
        """Make the plan's changes in order (peerings before the routes that use them)."""
        return apply_changes(plan, out)

    # -- audit input ----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Peerings, route tables and security-group rules, read-only."""
        self.preflight()
        vpcs = {_vpc(c): c for c in self.clusters}
        views: list[PeeringView] = []
        seen: set[str] = set()
        for c in self.clusters:
            for pcx in self._peerings_of(c):
                if pcx["VpcPeeringConnectionId"] not in seen:
                    seen.add(pcx["VpcPeeringConnectionId"])
                    views += _views(pcx, vpcs)
        tables = tuple(
            RouteTable(
                c.name,
                f"route table {t['RouteTableId']} in {c.cloud_region}",
                tuple(_route_of(r) for r in t.get("Routes", []) if r.get("DestinationCidrBlock")),
            )
            for c in self.clusters
            for t in self._route_tables(c)
        )
        rules: list[Rule] = []
        labels: dict[str, str] = {}
        for c in self.clusters:
            groups = self._security_groups(c)
            rules += [r for g in groups for r in _rules(c.name, g)]
            ids = ", ".join(g["GroupId"] for g in groups)
            noun = "security group" if len(groups) == 1 else "security groups"
            labels[c.name] = f"{noun} {ids} in {c.cloud_region}"
        return Snapshot(
            cloud="aws",
            clusters=self.clusters,
            peerings=tuple(views),
            route_tables=tables,
            rules=tuple(rules),
            firewall_labels=labels,
            rule_sources={c.name: c.pod_cidrs for c in self.clusters},
            route_destinations={c.name: routed_cidrs(c) for c in self.clusters},
        )


def _authorize(
    provider: AwsProvider, region: str, sg: str, cidr: str, peer: str, ports: list[int]
) -> Callable[[], str]:
    perms = [
        {
            "IpProtocol": "tcp",
            "FromPort": p,
            "ToPort": p,
            "IpRanges": [{"CidrIp": cidr, "Description": f"netconform: peer {peer}"}],
        }
        for p in ports
    ]

    def run() -> str:
        provider._call(
            region,
            lambda ec2: ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=perms),
        )
        return f"{sg} allows tcp/{','.join(map(str, ports))} from {cidr}"

    return run


def _pair_name(clusters: tuple[Cluster, ...], a: Cluster, b: Cluster) -> str:
    first, second = (a, b) if clusters.index(a) < clusters.index(b) else (b, a)
    return f"{first.name}<->{second.name}"


def _vpc(c: Cluster) -> str:
    assert c.network is not None
    return c.network.id


def _target(route: dict[str, Any]) -> str:
    for key in (
        "VpcPeeringConnectionId",
        "GatewayId",
        "NatGatewayId",
        "TransitGatewayId",
        "NetworkInterfaceId",
        "InstanceId",
    ):
        if route.get(key):
            return str(route[key])
    return "unknown"


def _route_of(r: dict[str, Any]) -> Route:
    return Route(r["DestinationCidrBlock"], _target(r), r.get("State", "active") == "active")


def _views(pcx: dict[str, Any], vpcs: dict[str, Cluster]) -> list[PeeringView]:
    req, acc = pcx["RequesterVpcInfo"], pcx["AccepterVpcInfo"]
    a, b = vpcs.get(req["VpcId"]), vpcs.get(acc["VpcId"])
    if a is None or b is None:
        return []
    pid, state = pcx["VpcPeeringConnectionId"], pcx["Status"]["Code"]
    label = (
        f"peering {pid} ({req.get('Region', a.cloud_region)} -> "
        f"{acc.get('Region', b.cloud_region)})"
    )
    active = state == "active"
    return [
        PeeringView(a.name, b.name, pid, label, state, active),
        PeeringView(b.name, a.name, pid, label, state, active),
    ]


def _rules(cluster: str, group: dict[str, Any]) -> list[Rule]:
    rules = []
    for perm in group.get("IpPermissions", []):
        proto = str(perm.get("IpProtocol"))
        if proto not in ("tcp", "6", "-1"):
            continue
        ports = (
            (PortRange(0, 65535),)
            if proto == "-1"
            else (PortRange(int(perm.get("FromPort", 0)), int(perm.get("ToPort", 65535))),)
        )
        sources = tuple(r["CidrIp"] for r in perm.get("IpRanges", []))
        if sources:
            rules.append(Rule(cluster, group["GroupId"], sources, ports))
    return rules


def _client_error(err: ClientError, region: str) -> str:
    info = err.response.get("Error", {})
    code, msg = str(info.get("Code", "Error")), str(info.get("Message", ""))
    op = err.operation_name
    if code in DENIED or code.endswith("NotAuthorized"):
        return f"aws: permission denied: ec2:{op} in {region} ({code})"
    if code in ("AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException"):
        return f"aws: credentials rejected in {region} ({code}): {msg}"
    if code.endswith(".NotFound"):
        return f"aws: {op} in {region}: not found ({code}: {msg})"
    return f"aws: {op} in {region} failed ({code}): {msg}"
