"""Shared fixtures: moto on loopback, fake credentials passed explicitly, topologies."""

from __future__ import annotations

import logging
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from azure.core.credentials import AccessToken
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from moto.server import ThreadedMotoServer

from netconform.topology import Topology, parse_topology
from provisioning.azure import AzureProvider
from provisioning.build import MANAGED_BY
from provisioning.gcp import GcpProvider
from tests.cloud.fake_azure import FakeAzure
from tests.cloud.fake_gcp import FakeGcp
from tests.cloud.tlscert import make_cert

logging.getLogger("werkzeug").setLevel(logging.ERROR)

#: Seed 000's three regions.
AWS_REGIONS = {"central": "ca-central-1", "east": "us-east-2", "west": "us-west-2"}
CIDRS = {"central": "10.101.0.0/16", "east": "10.102.0.0/16", "west": "10.103.0.0/16"}
PORTS = (2181, 2888, 3888, 9092, 8081)


@pytest.fixture(autouse=True)
def _no_metadata_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every SDK off instance-metadata endpoints: nothing may leave 127.0.0.1."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server for the session, on a free loopback port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto(moto_url: str) -> str:
    """The moto server, reset to empty for this test."""
    req = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=30):  # 5 s timed out under load (average 48)
        pass
    return moto_url


@pytest.fixture(scope="session")
def aws_session() -> boto3.Session:
    """Fake credentials given to the session itself; os.environ is not touched."""
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


def build_aws_world(session: boto3.Session, url: str) -> dict[str, dict[str, str]]:
    """One VPC, subnet, route table and node security group per region; returns their ids."""
    world = {}
    for name, region in AWS_REGIONS.items():
        ec2 = session.client("ec2", region_name=region, endpoint_url=url)
        vpc = ec2.create_vpc(CidrBlock=CIDRS[name])["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=CIDRS[name].replace("/16", "/20"))
        rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet["Subnet"]["SubnetId"])
        sg = ec2.create_security_group(GroupName=f"{name}-nodes", Description="nodes", VpcId=vpc)[
            "GroupId"
        ]
        world[name] = {"vpc": vpc, "rtb": rtb, "sg": sg, "region": region}
    return world


def aws_topology(world: dict[str, dict[str, str]], **overrides: Any) -> Topology:
    """A seed-000 topology naming the world's VPCs, route tables and security groups."""
    clusters = []
    for name, ids in world.items():
        clusters.append(
            {
                "name": name,
                "context": f"mrc-{name}",
                "pod_cidrs": [CIDRS[name]],
                "cloud": "aws",
                "cloud_region": ids["region"],
                "network": {
                    "id": ids["vpc"],
                    "cidrs": [CIDRS[name]],
                    "route_tables": [ids["rtb"]],
                    "security_groups": [ids["sg"]],
                },
            }
        )
    doc: dict[str, Any] = {
        "name": "mrc-aws",
        "clusters": clusters,
        "ports": {"required": list(PORTS)},
    }
    doc.update(overrides)
    return parse_topology(doc)


# -- GCP ----------------------------------------------------------------------------------

GCP_PROJECT = "netconform-test"
GCP = {  # name: (region, subnet range, pod range)
    "central": ("us-central1", "10.101.0.0/20", "10.52.0.0/14"),
    "east": ("us-east4", "10.102.0.0/20", "10.56.0.0/14"),
    "west": ("us-west1", "10.103.0.0/20", "10.60.0.0/14"),
}


@pytest.fixture
def fake_gcp() -> Iterator[FakeGcp]:
    """A Compute API on loopback with one VPC network per region (subnet + pod range)."""
    fake = FakeGcp()
    for name, (_region, subnet, pods) in GCP.items():
        fake.add_network(GCP_PROJECT, f"{name}-vpc", [subnet, pods])
    fake.server.start()
    yield fake
    fake.server.stop()


def gcp_topology(**cluster_overrides: dict[str, Any]) -> Topology:
    clusters = []
    for name, (region, _subnet, pods) in GCP.items():
        entry: dict[str, Any] = {
            "name": name,
            "pod_cidrs": [pods],
            "cloud": "gcp",
            "cloud_region": region,
            "network": {"id": f"{name}-vpc", "project": GCP_PROJECT},
        }
        entry.update(cluster_overrides.get(name, {}))
        clusters.append(entry)
    return parse_topology({"name": "mrc-gcp", "clusters": clusters})


def gcp_provider(fake: FakeGcp, topology: Topology) -> GcpProvider:
    """The real compute_v1 clients, anonymous, pointed at the fake."""
    return GcpProvider(
        topology,
        AnonymousCredentials(),  # type: ignore[no-untyped-call]
        ClientOptions(api_endpoint=fake.server.url),
    )


# -- Azure --------------------------------------------------------------------------------

AZ_SUB, AZ_RG = "00000000-0000-0000-0000-00000000c0de", "mrc"
AZURE = {
    "central": ("canadacentral", "10.101.0.0/16"),
    "east": ("eastus2", "10.102.0.0/16"),
    "west": ("westus2", "10.103.0.0/16"),
}


class FakeToken:
    """A TokenCredential that never leaves the process."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("netconform-test-token", int(time.time()) + 3600)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fake_azure(tls_cert: tuple[Path, Path]) -> Iterator[FakeAzure]:
    """ARM on loopback over TLS with one VNet and NSG per region."""
    fake = FakeAzure(str(tls_cert[0]), str(tls_cert[1]))
    for name, (location, cidr) in AZURE.items():
        fake.add_vnet(AZ_SUB, AZ_RG, f"{name}-vnet", location, [cidr])
        fake.add_nsg(AZ_SUB, AZ_RG, f"{name}-nsg", location)
    fake.server.start()
    yield fake
    fake.server.stop()


def vnet_id(name: str) -> str:
    return (
        f"/subscriptions/{AZ_SUB}/resourceGroups/{AZ_RG}/providers/Microsoft.Network/"
        f"virtualNetworks/{name}-vnet"
    )


def azure_topology(**cluster_overrides: dict[str, Any]) -> Topology:
    clusters = []
    for name, (location, cidr) in AZURE.items():
        entry: dict[str, Any] = {
            "name": name,
            "pod_cidrs": [cidr],
            "cloud": "azure",
            "cloud_region": location,
            "network": {"id": vnet_id(name), "cidrs": [cidr], "security_groups": [f"{name}-nsg"]},
        }
        entry.update(cluster_overrides.get(name, {}))
        clusters.append(entry)
    return parse_topology({"name": "mrc-azure", "clusters": clusters})


def azure_provider(fake: FakeAzure, cert: Path, topology: Topology) -> AzureProvider:
    """The real NetworkManagementClient, over TLS to the fake, trusting only its cert."""
    return AzureProvider(
        topology,
        FakeToken(),
        base_url=fake.server.url,
        connection_verify=str(cert),
        polling_interval=0,
    )


# -- building (provisioning.aws_build) ------------------------------------------------------

BUILD_REGIONS = {"central": "ca-central-1", "east": "us-east-2", "west": "us-west-2"}


def topology_file(tmp_path: Path, **change: Any) -> Path:
    clusters = []
    for name, region in BUILD_REGIONS.items():
        build = {"vpc_cidr": CIDRS[name], "kubernetes_version": "1.31", "node_count": 2}
        build.update(change.get(name, {}))
        clusters.append(
            {
                "name": name,
                "context": f"mrc-{name}",
                "pod_cidrs": [CIDRS[name]],
                "service_cidrs": ["172.20.0.0/16"],
                "cloud": "aws",
                "cloud_region": change.get(f"{name}_region", region),
                "build": build,
            }
        )
    doc = {"name": "mrc", "kubeconfig": "built.kubeconfig", "clusters": clusters}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def aws(moto: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 pointed at moto by its own setting; moto with AWS's managed IAM policies."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    return moto


def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


def tagged(sess: boto3.Session, key: str = MANAGED_BY, value: str = "netconform") -> list[str]:
    """Every resource of ours left anywhere the tests build: EC2 by tag, EKS, IAM roles."""
    left = []
    flt = [{"Name": f"tag:{key}", "Values": [value]}]
    for region in BUILD_REGIONS.values():
        ec2 = sess.client("ec2", region_name=region)
        left += [v["VpcId"] for v in ec2.describe_vpcs(Filters=flt)["Vpcs"]]
        left += [s["SubnetId"] for s in ec2.describe_subnets(Filters=flt)["Subnets"]]
        left += [g["GroupId"] for g in ec2.describe_security_groups(Filters=flt)["SecurityGroups"]]
        left += [
            p["VpcPeeringConnectionId"]
            for p in ec2.describe_vpc_peering_connections(Filters=flt)["VpcPeeringConnections"]
            if p["Status"]["Code"] not in ("deleted", "deleting")
        ]
        left += sess.client("eks", region_name=region).list_clusters()["clusters"]
    left += [
        r["RoleName"] for r in sess.client("iam").list_roles(PathPrefix="/netconform/")["Roles"]
    ]
    return left
