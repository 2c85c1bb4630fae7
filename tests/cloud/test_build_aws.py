"""`netconform-cloud build|destroy` on AWS: boto3 against moto on loopback (its EC2, EKS and
IAM backends), through the CLI as a user runs it."""

from __future__ import annotations

import io
import os
import re
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
import yaml

from provisioning import build_cli, cli
from provisioning.build import MANAGED_BY, RUN_ID_TAG
from tests.cloud.conftest import session, tagged, topology_file


def run(argv: list[str], sess: boto3.Session | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(argv, out, sess or session())
    return code, out.getvalue()


def test_dry_run_prints_every_resource_with_an_estimate_and_creates_nothing(
    aws: str, tmp_path: Path
) -> None:
    code, text = run(["build", "--topology", str(topology_file(tmp_path)), "--dry-run"])
    assert code == 0, text
    assert "create aws ca-central-1   vpc mrc-central  (10.101.0.0/16)  ~5s" in text
    assert "create aws us-east-2      eks cluster mrc-east" in text and "~10 min" in text
    assert "create aws global         iam role mrc-west-nodes" in text
    assert "node group mrc-west-nodes  (2 x m5.large, once the cluster is ACTIVE" in text
    assert "vpc peering central<->east" in text
    assert "kubeconfig context mrc-central" in text
    assert "build plan: 36 to create, 1 unchanged, about 17 min" in text
    # the kube glue is planned too; moto's clusters serve no Kubernetes API, so it is a noop
    assert "dns glue DNS LoadBalancers and stub domains (netconform-kube apply)" in text
    assert "not applied: an offline fake's clusters serve no Kubernetes API" in text
    assert "dry run: nothing created" in text
    assert tagged(session()) == []
    assert not (tmp_path / "built.kubeconfig").exists()


def test_build_makes_tagged_clusters_contexts_and_glue_then_plans_only_noops(
    aws: str, tmp_path: Path
) -> None:
    topo = str(topology_file(tmp_path))
    code, text = run(["build", "--topology", topo, "--run-id", "nc-test-1"])
    assert code == 0, text
    assert "wait   eks cluster mrc-east: ACTIVE after" in text and "(cluster_ready 1800s)" in text
    assert (
        "wait   node group mrc-east-nodes: ACTIVE after" in text and "(nodes_ready 1200s)" in text
    )
    assert "aws: applied: 15 created" in text  # the glue: 3 peerings, 6 routes, 6 rules
    sess = session()
    east = sess.client("eks", region_name="us-east-2")
    cluster = east.describe_cluster(name="mrc-east")["cluster"]
    assert cluster["version"] == "1.31"
    assert (
        cluster["tags"][RUN_ID_TAG] == "nc-test-1" and cluster["tags"][MANAGED_BY] == "netconform"
    )
    group = east.describe_nodegroup(clusterName="mrc-east", nodegroupName="mrc-east-nodes")
    assert group["nodegroup"]["scalingConfig"]["desiredSize"] == 2
    assert group["nodegroup"]["instanceTypes"] == ["m5.large"]
    ec2 = sess.client("ec2", region_name="us-east-2")
    pcx = ec2.describe_vpc_peering_connections(
        Filters=[{"Name": f"tag:{RUN_ID_TAG}", "Values": ["nc-test-1"]}]
    )["VpcPeeringConnections"]
    assert {p["Status"]["Code"] for p in pcx} == {"active"} and len(pcx) == 2
    kube = yaml.safe_load((tmp_path / "built.kubeconfig").read_text())
    ctx = {c["name"]: c["context"] for c in kube["contexts"]}
    assert set(ctx) == {"mrc-central", "mrc-east", "mrc-west"}
    user = next(u for u in kube["users"] if u["name"] == ctx["mrc-east"]["user"])["user"]
    assert user["exec"]["args"] == [
        "--region", "us-east-2", "eks", "get-token", "--cluster-name", "mrc-east",
        "--output", "json",
    ]  # fmt: skip
    assert user["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert oct((tmp_path / "built.kubeconfig").stat().st_mode & 0o777) == "0o600"

    code, again = run(["build", "--topology", topo, "--dry-run"])
    assert code == 0, again
    assert "build plan: 0 to create, 49 unchanged" in again
    assert "run id: nc-test-1" in again  # a rebuild keeps the run id of what it finds
    code, again = run(["build", "--topology", topo])
    assert code == 0 and "create" not in again.split("build plan")[0], again

    code, gone = run(["destroy", "--topology", topo])
    assert code == 0, gone
    assert "refused" not in gone
    assert tagged(sess) == []


def test_destroy_touches_nothing_without_the_tag(aws: str, tmp_path: Path) -> None:
    sess = session()
    ec2 = sess.client("ec2", region_name="us-east-2")
    mine = ec2.create_vpc(CidrBlock="10.200.0.0/16")["Vpc"]["VpcId"]
    sess.client("iam").create_role(
        RoleName="mrc-east-cluster-2", Path="/netconform/", AssumeRolePolicyDocument="{}"
    )
    topo = str(topology_file(tmp_path))
    assert run(["build", "--topology", topo])[0] == 0
    code, text = run(["destroy", "--topology", topo])
    assert code == 0, text
    assert ec2.describe_vpcs(VpcIds=[mine])["Vpcs"], "an untagged VPC was deleted"
    assert sess.client("iam").get_role(RoleName="mrc-east-cluster-2")["Role"]
    assert mine not in text


def test_a_resource_that_refuses_to_go_is_named_and_the_rest_go(aws: str, tmp_path: Path) -> None:
    topo = str(topology_file(tmp_path))
    assert run(["build", "--topology", topo])[0] == 0
    sess = session()
    east = sess.client("eks", region_name="us-east-2")
    role = sess.client("iam").get_role(RoleName="mrc-east-nodes")["Role"]["Arn"]
    subnets = east.describe_cluster(name="mrc-east")["cluster"]["resourcesVpcConfig"]["subnetIds"]
    east.create_nodegroup(  # someone's own node group, untagged: the cluster cannot go
        clusterName="mrc-east", nodegroupName="theirs", subnets=subnets, nodeRole=role
    )
    code, text = run(["destroy", "--topology", topo])
    assert code == 9
    assert (
        "refused aws us-east-2 eks cluster mrc-east: aws: eks:DeleteCluster in us-east-2 " in text
    )
    assert "ResourceInUseException" in text
    assert "destroyed " in text and "; 1 refused to go" in text
    assert east.describe_nodegroup(clusterName="mrc-east", nodegroupName="theirs")
    left = tagged(sess)
    assert left == ["mrc-east"], left


def deny(sess: boto3.Session, operation: str) -> None:
    """Answer one operation with AWS's 403, as an IAM policy without the permission does."""

    def refuse(**kwargs: Any) -> tuple[Any, dict[str, Any]]:
        service = kwargs["model"].service_model.signing_name
        body = {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": f"User: arn:aws:iam::123456789012:user/ci is not authorized to "
                f"perform: {service}:{kwargs['model'].name}",
            },
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        return SimpleNamespace(status_code=403, headers={}), body

    sess.events.register(f"before-call.{operation}", refuse)


def test_a_403_in_the_middle_stops_names_the_permission_and_rolls_back(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sess = session()
    deny(sess, "eks.CreateNodegroup")
    code, text = run(["build", "--topology", str(topology_file(tmp_path))], sess)
    err = capsys.readouterr().err
    assert code == 9, text
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        "netconform-cloud: error: aws: permission denied: eks:CreateNodegroup in ca-central-1 "
        "(AccessDeniedException) -- creating node group mrc-central-nodes; rolled back 27 "
        "resources this run created"
    ), err
    assert tagged(session()) == []


def test_an_interrupted_build_is_destroyed_completely_by_run_id(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sess = session()
    calls: list[str] = []

    def interrupt(**kwargs: Any) -> None:
        calls.append("subnet")
        if len(calls) == 3:  # between two creates: SIGINT, as Ctrl-C sends it
            os.kill(os.getpid(), signal.SIGINT)

    sess.events.register("after-call.ec2.CreateSubnet", interrupt)
    topo = str(topology_file(tmp_path))
    code, _ = run(["build", "--topology", topo, "--run-id", "nc-cut-1"], sess)
    err = capsys.readouterr().err
    assert code == 130
    assert "destroy --run-id nc-cut-1" in err
    left = tagged(session(), RUN_ID_TAG, "nc-cut-1")
    assert len(left) >= 4, left  # the first VPCs, subnets, groups were made
    code, text = run(["destroy", "--run-id", "nc-cut-1"])
    assert code == 0, text
    assert tagged(session()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"east_region": "us-mars-1"}, "cluster east: cloud_region: aws has no region 'us-mars-1'"),
        (
            {"west": {"kubernetes_version": "1.19"}},
            "cluster west: build.kubernetes_version: EKS offers 1.29, 1.30, 1.31, 1.32, 1.33, "
            "not '1.19'",
        ),
        (
            {"central": {"machine_type": "m5.huge"}},
            "cluster central: build.machine_type: ca-central-1 has no instance type 'm5.huge'",
        ),
    ],
)
def test_bad_input_is_one_line_before_anything_is_created(
    aws: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, Any],
    message: str,
) -> None:
    code, _ = run(["build", "--topology", str(topology_file(tmp_path, **change))])
    err = capsys.readouterr().err
    assert (code, err) == (3, f"netconform-cloud: error: {message}\n")
    assert tagged(session()) == []


def test_overlapping_networks_are_refused_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = topology_file(tmp_path, east={"vpc_cidr": "10.102.0.0/16"})
    text = path.read_text().replace("10.102.0.0/16", "10.101.128.0/17")
    path.write_text(text)
    code = cli.main(["build", "--topology", str(path)], io.StringIO(), session())
    err = capsys.readouterr().err
    assert code == 3
    assert "refusing to peer: clusters central and east overlap: 10.101.0.0/16 (central)" in err


def test_a_real_cloud_build_asks_for_yes(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # boto3 still talks to moto; only the judgement of where it talks says "a real cloud"
    monkeypatch.setattr(build_cli, "aws_endpoint", lambda: None)
    code, text = run(["build", "--topology", str(topology_file(tmp_path))])
    assert code == 15 and "build plan: 37 to create" in text
    assert re.search(r"create +aws +all +dns glue DNS LoadBalancers and stub domains", text), text
    assert "without --yes or build.confirm: true" in capsys.readouterr().err
    assert tagged(session()) == []
