"""The cloud preflight suite run as a real pytest session (pytester) against moto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from provisioning.aws import AwsProvider
from tests.cloud.conftest import CIDRS, aws_topology, build_aws_world

pytest_plugins = ["pytester"]
SUITE = Path(__file__).resolve().parents[2] / "suites" / "cloud" / "test_cloud_preflight.py"
CONFTEST = """
pytest_plugins = ["fixtures.cloud"]

def pytest_addoption(parser):
    parser.addoption("--topology")
"""


@pytest.fixture
def suite(
    pytester: pytest.Pytester,
    moto: str,
    aws_session: boto3.Session,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[pytest.Pytester, dict[str, Any], str]:
    """A moto world with peering applied, a topology file with one GCP cluster too."""
    world = build_aws_world(aws_session, moto)
    provider = AwsProvider(aws_topology(world), aws_session, moto)
    provider.apply(provider.plan())
    doc: dict[str, Any] = {"name": "mixed", "ports": {"required": [2181, 9092]}, "clusters": []}
    for name, ids in world.items():
        doc["clusters"].append(
            {
                "name": name,
                "pod_cidrs": [CIDRS[name]],
                "cloud": "aws",
                "cloud_region": ids["region"],
                "network": {
                    "id": ids["vpc"],
                    "route_tables": [ids["rtb"]],
                    "security_groups": [ids["sg"]],
                },
            }
        )
    for i, region in enumerate(("us-west1", "us-east4")):
        doc["clusters"].append(
            {
                "name": f"gke{i}",
                "pod_cidrs": [f"10.{60 + 4 * i}.0.0/14"],
                "cloud": "gcp",
                "cloud_region": region,
                "network": {"id": f"gke{i}-vpc", "project": "p"},
            }
        )
    path = pytester.path / "mixed.yaml"
    path.write_text(yaml.safe_dump(doc))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_cloud_preflight=SUITE.read_text())
    for var, value in {
        "AWS_ENDPOINT_URL_EC2": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "GOOGLE_APPLICATION_CREDENTIALS": str(pytester.path / "none.json"),
    }.items():
        monkeypatch.setenv(var, value)
    return pytester, world, str(path)


def test_suite_passes_aws_and_reports_gcp_not_supported(
    suite: tuple[pytest.Pytester, dict[str, Any], str],
) -> None:
    pytester, _world, topology = suite
    result = pytester.runpytest_inprocess(
        "--topology", topology, "-rs", "-v", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(
        [
            "*test_peering_active?gcp:gke0->gke1? SKIPPED*",
            "*test_routes_present?aws:west->east? PASSED*",
            "*test_port_open?aws:central->east:9092? PASSED*",
            "SKIPPED ?7? *: not supported: no GCP credentials "
            "(set GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`)",
        ]
    )
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 3 + 3 + 6 + 12 + 1  # aws cases + the gcp overlap check
    assert outcomes["skipped"] == 1 + 2 + 4
    assert "failed" not in outcomes


def test_suite_fails_a_closed_port_by_name(
    suite: tuple[pytest.Pytester, dict[str, Any], str], aws_session: boto3.Session, moto: str
) -> None:
    pytester, world, topology = suite
    aws_session.client(
        "ec2", region_name="us-west-2", endpoint_url=moto
    ).revoke_security_group_ingress(
        GroupId=world["west"]["sg"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 9092,
                "ToPort": 9092,
                "IpRanges": [{"CidrIp": "10.101.0.0/16"}],
            }
        ],
    )
    result = pytester.runpytest_inprocess(
        "--topology", topology, "-k", "west", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(
        [
            f"*aws central->west: security group {world['west']['sg']} in us-west-2 does not allow "
            "tcp/9092 from 10.101.0.0/16 (peer central)*",
            "*FAILED*test_port_open?aws:central->west:9092?*",
        ]
    )
    assert result.parseoutcomes()["failed"] == 1


def test_suite_without_cloud_clusters_says_not_supported(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_cloud_preflight=SUITE.read_text())
    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["*SKIPPED*not supported: the topology names no aws, gcp, azure or lab cluster*"]
    )
    assert result.parseoutcomes()["skipped"] == 4
