"""AWS glue and audits through boto3 against moto served on loopback (real HTTP)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from netconform.cloudaudit import AuditFinding, audit_peering, audit_port, audit_routes
from netconform.errors import CloudError, TopologyError
from provisioning import cli
from provisioning.aws import AwsProvider
from provisioning.cloud import check_overlaps, print_plan
from tests.cloud.conftest import CIDRS, aws_topology, build_aws_world

World = dict[str, dict[str, str]]


@pytest.fixture
def world(moto: str, aws_session: boto3.Session) -> World:
    return build_aws_world(aws_session, moto)


def provider(world: World, session: boto3.Session, url: str, **kw: Any) -> AwsProvider:
    return AwsProvider(aws_topology(world, **kw), session, url)


def ec2(session: boto3.Session, url: str, cluster: str, world: World) -> Any:
    return session.client("ec2", region_name=world[cluster]["region"], endpoint_url=url)


def applied(world: World, session: boto3.Session, url: str) -> AwsProvider:
    p = provider(world, session, url)
    p.apply(p.plan())
    return provider(world, session, url)


def messages(findings: list[AuditFinding]) -> list[str]:
    return [f.message for f in findings]


def test_plan_lists_peerings_routes_and_rules_per_region(
    world: World, aws_session: Any, moto: str
) -> None:
    plan = provider(world, aws_session, moto).plan()
    out = io.StringIO()
    print_plan(plan, out)
    text = out.getvalue()
    assert [c.action for c in plan].count("create") == 3 + 6 + 6
    assert "aws ca-central-1:" in text and "aws us-west-2:" in text
    assert "create vpc peering central<->east" in text
    assert f"route {world['east']['rtb']} -> {CIDRS['central']} (peer central)" in text
    assert (
        f"security group {world['west']['sg']} ingress tcp/2181,2888,3888,9092,8081 from "
        f"{CIDRS['east']} (peer east)" in text
    )
    assert "plan: 15 to change, 0 unchanged" in text
    assert not ec2(aws_session, moto, "central", world).describe_vpc_peering_connections()[
        "VpcPeeringConnections"
    ], "plan must not create anything"


def test_apply_peers_across_regions_routes_and_opens_ports(
    world: World, aws_session: Any, moto: str
) -> None:
    p = provider(world, aws_session, moto)
    report = p.apply(p.plan())
    assert report.summary() == "applied: 15 created, 0 updated, 0 unchanged"
    east = ec2(aws_session, moto, "east", world)
    pcxs = east.describe_vpc_peering_connections()["VpcPeeringConnections"]
    central_east = next(
        x
        for x in pcxs
        if x["RequesterVpcInfo"]["VpcId"] == world["central"]["vpc"]
        and x["AccepterVpcInfo"]["VpcId"] == world["east"]["vpc"]
    )
    assert central_east["Status"]["Code"] == "active"
    assert central_east["AccepterVpcInfo"]["Region"] == "us-east-2"
    table = east.describe_route_tables(RouteTableIds=[world["east"]["rtb"]])["RouteTables"][0]
    route = next(r for r in table["Routes"] if r.get("DestinationCidrBlock") == CIDRS["central"])
    assert route["VpcPeeringConnectionId"] == central_east["VpcPeeringConnectionId"]
    sg = east.describe_security_groups(GroupIds=[world["east"]["sg"]])["SecurityGroups"][0]
    opened = {(p["FromPort"], r["CidrIp"]) for p in sg["IpPermissions"] for r in p["IpRanges"]}
    assert {(port, CIDRS["central"]) for port in (2181, 2888, 3888, 9092, 8081)} <= opened


def test_second_apply_changes_nothing_and_says_so(
    world: World, aws_session: Any, moto: str
) -> None:
    again = applied(world, aws_session, moto)
    plan = again.plan()
    assert {c.action for c in plan} == {"noop"}
    assert again.apply(plan).summary() == "no changes: all 15 resources already as planned"


def test_audits_pass_after_apply(world: World, aws_session: Any, moto: str) -> None:
    snap = applied(world, aws_session, moto).snapshot()
    for a, b in (("central", "east"), ("central", "west"), ("east", "west")):
        assert audit_peering(snap, a, b) == []
        assert audit_routes(snap, a, b) == [] and audit_routes(snap, b, a) == []
        assert audit_port(snap, a, b, 9092) == [] and audit_port(snap, b, a, 2181) == []


def test_pending_peering_fails_the_peering_audit(world: World, aws_session: Any, moto: str) -> None:
    central = ec2(aws_session, moto, "central", world)
    pid = central.create_vpc_peering_connection(
        VpcId=world["central"]["vpc"],
        PeerVpcId=world["east"]["vpc"],
        PeerRegion="us-east-2",
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    snap = provider(world, aws_session, moto).snapshot()
    found = messages(audit_peering(snap, "central", "east"))
    assert found[0] == (
        f"aws central->east: peering {pid} (ca-central-1 -> us-east-2) on "
        "central's side is pending-acceptance, not active"
    )
    plan = provider(world, aws_session, moto).plan()
    accept = next(c for c in plan if "central<->east" in c.resource)
    assert (accept.action, accept.region) == ("update", "us-east-2")


def test_missing_route_in_one_direction_fails_only_that_direction(
    world: World, aws_session: Any, moto: str
) -> None:
    p = applied(world, aws_session, moto)
    ec2(aws_session, moto, "east", world).delete_route(
        RouteTableId=world["east"]["rtb"], DestinationCidrBlock=CIDRS["central"]
    )
    snap = p.snapshot()
    assert messages(audit_routes(snap, "east", "central")) == [
        f"aws east->central: route table {world['east']['rtb']} in us-east-2 has no route "
        f"to {CIDRS['central']} (peer central)"
    ]
    assert audit_routes(snap, "central", "east") == []


def test_route_through_the_wrong_target_fails(world: World, aws_session: Any, moto: str) -> None:
    p = applied(world, aws_session, moto)
    client = ec2(aws_session, moto, "east", world)
    igw = client.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    client.attach_internet_gateway(InternetGatewayId=igw, VpcId=world["east"]["vpc"])
    client.replace_route(
        RouteTableId=world["east"]["rtb"], DestinationCidrBlock=CIDRS["central"], GatewayId=igw
    )
    (finding,) = audit_routes(p.snapshot(), "east", "central")
    assert f"routes {CIDRS['central']} to {igw}, not to the pair's peering" in finding.message
    change = next(
        c
        for c in provider(world, aws_session, moto).plan()
        if c.resource.startswith(f"route {world['east']['rtb']} -> {CIDRS['central']}")
    )
    assert change.action == "update" and igw in change.detail


def test_closed_port_fails_naming_pair_resource_and_port(
    world: World, aws_session: Any, moto: str
) -> None:
    p = applied(world, aws_session, moto)
    ec2(aws_session, moto, "central", world).revoke_security_group_ingress(
        GroupId=world["central"]["sg"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 9092,
                "ToPort": 9092,
                "IpRanges": [{"CidrIp": CIDRS["east"]}],
            }
        ],
    )
    snap = p.snapshot()
    (finding,) = audit_port(snap, "east", "central", 9092)
    assert (finding.pair, finding.port) == ("east->central", 9092)
    assert finding.message == (
        f"aws east->central: security group {world['central']['sg']} in ca-central-1 does not "
        f"allow tcp/9092 from {CIDRS['east']} (peer east)"
    )
    assert audit_port(snap, "east", "central", 2181) == []
    assert audit_port(snap, "west", "central", 9092) == []
    reopen = [c for c in provider(world, aws_session, moto).plan() if c.action != "noop"]
    assert [c.resource for c in reopen] == [
        f"security group {world['central']['sg']} ingress tcp/9092 from {CIDRS['east']} (peer east)"
    ]


def test_overlapping_cidrs_are_refused_before_any_call(
    world: World, aws_session: Any, moto: str
) -> None:
    world["east"] = {**world["east"]}
    topo = aws_topology(world)
    clusters = [
        {
            "name": c.name,
            "pod_cidrs": ["10.120.0.0/16"],
            "cloud": "aws",
            "cloud_region": c.cloud_region,
            "network": {"id": "vpc-never-called"},
        }
        for c in topo.clusters[:2]
    ]
    from netconform.topology import parse_topology

    with pytest.raises(TopologyError) as err:
        check_overlaps(parse_topology({"clusters": clusters}))
    assert str(err.value) == (
        "refusing to peer: clusters central and east overlap: "
        "10.120.0.0/16 (central) and 10.120.0.0/16 (east)"
    )


def test_cli_refuses_overlap_in_one_line_and_calls_nothing(
    tmp_path: Any, moto: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", moto)
    topo = tmp_path / "t.yaml"
    topo.write_text(
        "clusters:\n"
        "- {name: c1, pod_cidrs: [10.120.0.0/16], cloud: aws, cloud_region: us-west-2,"
        " network: {id: vpc-1}}\n"
        "- {name: c2, pod_cidrs: [10.120.0.0/16], cloud: aws, cloud_region: us-west-2,"
        " network: {id: vpc-2}}\n"
    )
    assert cli.main(["apply", "--topology", str(topo)]) == 3
    err = capsys.readouterr().err
    assert err == (
        "netconform-cloud: error: refusing to peer: clusters c1 and c2 overlap: "
        "10.120.0.0/16 (c1) and 10.120.0.0/16 (c2)\n"
    )


@pytest.fixture
def aws_env(moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's default boto3 chain, pointed at moto through boto3's own env settings."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", moto)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


def write_topology(tmp_path: Any, world: World, **kw: Any) -> str:
    import yaml

    from netconform.topology import dump_topology

    topo = aws_topology(world, **kw)
    doc = dump_topology(topo)
    for entry, cluster in zip(doc["clusters"], topo.clusters, strict=True):
        assert cluster.network is not None
        entry["network"] = {
            "id": cluster.network.id,
            "cidrs": list(cluster.network.cidrs),
            "route_tables": list(cluster.network.route_tables),
            "security_groups": list(cluster.network.security_groups),
        }
    path = tmp_path / "mrc.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_cli_dry_run_prints_only_the_plan(
    world: World, aws_env: None, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    topo = write_topology(tmp_path, world)
    assert cli.main(["apply", "--dry-run", "--topology", topo]) == 0
    out = capsys.readouterr().out
    assert "create vpc peering central<->west" in out and "done" not in out
    assert cli.main(["audit", "--topology", topo]) == 1
    assert "FAIL peering aws:central->east" in capsys.readouterr().out


def test_cli_apply_twice_then_audit(
    world: World, aws_env: None, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    topo = write_topology(tmp_path, world)
    assert cli.main(["apply", "--topology", topo]) == 0
    first = capsys.readouterr().out
    assert first.index("plan: 15 to change") < first.index("  done ")
    assert "aws: applied: 15 created, 0 updated, 0 unchanged" in first
    assert cli.main(["apply", "--topology", topo, "--cloud", "aws"]) == 0
    assert "aws: no changes: all 15 resources already as planned" in capsys.readouterr().out
    assert cli.main(["audit", "--topology", topo]) == 0
    assert capsys.readouterr().out.strip().endswith("audit: 42 passed, 0 failed")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"cloud_region": "xx-nowhere-1"}, "aws: unknown region 'xx-nowhere-1' for cluster east"),
        (
            {"network": {"id": "vpc-0123456789abcdef0", "security_groups": ["sg-1"]}},
            "aws: VPC vpc-0123456789abcdef0 of cluster east does not exist in us-east-2",
        ),
    ],
    ids=["unknown-region", "missing-vpc"],
)
def test_bad_input_is_one_line(
    world: World,
    aws_env: None,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    override: dict[str, Any],
    expected: str,
) -> None:
    topo = aws_topology(world)
    clusters: list[dict[str, Any]] = []
    doc = {"name": "t", "clusters": clusters, "ports": {"required": [9092]}}
    for c in topo.clusters:
        assert c.network is not None
        entry: dict[str, Any] = {
            "name": c.name,
            "pod_cidrs": list(c.pod_cidrs),
            "cloud": "aws",
            "cloud_region": c.cloud_region,
            "network": {"id": c.network.id, "security_groups": list(c.network.security_groups)},
        }
        if c.name == "east":
            entry.update(override)
        clusters.append(entry)
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert cli.main(["plan", "--topology", str(path)]) == 9
    captured = capsys.readouterr()
    assert captured.err == f"netconform-cloud: error: {expected}\n"
    assert "Traceback" not in captured.out + captured.err


def test_missing_credentials_is_one_line(
    world: World,
    tmp_path: Any,
    moto: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", moto)
    topo = write_topology(tmp_path, world)
    assert cli.main(["plan", "--topology", topo]) == 9
    assert capsys.readouterr().err == (
        "netconform-cloud: error: aws: no credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)\n"
    )
    assert cli.main(["audit", "--topology", topo]) == 0
    assert capsys.readouterr().out.startswith(
        "aws: not supported: no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)"
    )


class _Denied(BaseHTTPRequestHandler):
    """EC2's wire answer to a caller without ec2:Describe* permission."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            b"<Code>UnauthorizedOperation</Code><Message>You are not authorized to perform "
            b"this operation.</Message></Error></Errors><RequestID>1</RequestID></Response>"
        )
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def denying_ec2() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Denied)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_permission_denied_is_one_line(world: World, aws_session: Any, denying_ec2: str) -> None:
    with pytest.raises(CloudError) as err:
        provider(world, aws_session, denying_ec2).plan()
    assert str(err.value) == (
        "aws: permission denied: ec2:DescribeVpcs in ca-central-1 (UnauthorizedOperation)"
    )


def test_failure_mid_apply_says_what_was_applied(world: World, aws_session: Any, moto: str) -> None:
    p = provider(world, aws_session, moto)
    plan = p.plan()
    ec2(aws_session, moto, "central", world).delete_security_group(GroupId=world["central"]["sg"])
    with pytest.raises(CloudError) as err:
        p.apply(plan)
    text = str(err.value)
    assert text.startswith("aws: AuthorizeSecurityGroupIngress in ca-central-1: not found")
    assert f"while applying 'security group {world['central']['sg']} ingress" in text
    assert "applied before it: vpc peering central<->east" in text
    assert "\n" not in text
