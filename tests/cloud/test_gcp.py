"""GCP glue and audits: the real compute_v1 clients against a Compute REST fake on loopback."""

from __future__ import annotations

import io
from typing import Any

import pytest

from netconform.cloudaudit import audit_overlap, audit_peering, audit_port, audit_routes
from netconform.errors import CloudError, TopologyError
from provisioning.cloud import check_overlaps, print_plan
from provisioning.gcp import GcpProvider
from tests.cloud.conftest import GCP, GCP_PROJECT, gcp_provider, gcp_topology
from tests.cloud.fake_gcp import FakeGcp

PODS = {name: pods for name, (_r, _s, pods) in GCP.items()}


def applied(fake: FakeGcp, **overrides: Any) -> GcpProvider:
    p = gcp_provider(fake, gcp_topology(**overrides))
    p.apply(p.plan())
    return gcp_provider(fake, gcp_topology(**overrides))


def test_plan_then_apply_then_nothing_to_change(fake_gcp: FakeGcp) -> None:
    p = gcp_provider(fake_gcp, gcp_topology())
    plan = p.plan()
    out = io.StringIO()
    print_plan(plan, out)
    assert "create peering netconform-central-to-east on central-vpc -> east-vpc" in out.getvalue()
    assert "plan: 12 to change, 0 unchanged" in out.getvalue()
    assert not fake_gcp.server.sent("POST"), "planning must not change anything"
    assert p.apply(plan).summary() == "applied: 12 created, 0 updated, 0 unchanged"
    again = gcp_provider(fake_gcp, gcp_topology())
    second = again.plan()
    assert {c.action for c in second} == {"noop"}
    assert again.apply(second).summary() == "no changes: all 12 resources already as planned"
    assert (
        fake_gcp.peering(GCP_PROJECT, "east-vpc", "netconform-east-to-central")["state"] == "ACTIVE"
    )


def test_requests_have_the_compute_wire_shape(fake_gcp: FakeGcp) -> None:
    applied(fake_gcp)
    add = fake_gcp.server.sent("POST", "/global/networks/central-vpc/addPeering")[0]
    assert add.path == f"/compute/v1/projects/{GCP_PROJECT}/global/networks/central-vpc/addPeering"
    assert add.body == {
        "networkPeering": {
            "name": "netconform-central-to-east",
            "exchangeSubnetRoutes": True,
            "exportCustomRoutes": True,
            "importCustomRoutes": True,
            "network": f"https://www.googleapis.com/compute/v1/projects/{GCP_PROJECT}/global/"
            "networks/east-vpc",
        }
    }
    insert = fake_gcp.server.sent("POST", "/global/firewalls")[0].body
    assert insert["direction"] == "INGRESS" and insert["sourceRanges"] == [PODS["east"]]
    assert insert["allowed"] == [
        {"IPProtocol": "tcp", "ports": ["2181", "2888", "3888", "9092", "8081"]}
    ]
    waits = fake_gcp.server.sent("POST", "/global/operations/")
    assert waits and all(w.path.endswith("/wait") for w in waits)
    routes = fake_gcp.server.sent("GET", "listPeeringRoutes")
    assert not routes
    gcp_provider(fake_gcp, gcp_topology()).snapshot()
    query = fake_gcp.server.sent("GET", "listPeeringRoutes")[0].query
    assert query["direction"] == ["INCOMING"] and query["region"] == ["us-central1"]


def test_audits_pass_after_apply(fake_gcp: FakeGcp) -> None:
    snap = applied(fake_gcp).snapshot()
    for a in GCP:
        for b in GCP:
            if a != b:
                assert audit_peering(snap, a, b) == [] and audit_routes(snap, a, b) == []
                assert audit_port(snap, a, b, 3888) == []


def test_one_sided_peering_fails_the_peering_audit(fake_gcp: FakeGcp) -> None:
    fake_gcp.networks[(GCP_PROJECT, "central-vpc")]["peerings"].append(
        {
            "name": "half",
            "state": "INACTIVE",
            "exchangeSubnetRoutes": True,
            "network": f"https://www.googleapis.com/compute/v1/projects/{GCP_PROJECT}/global/"
            "networks/east-vpc",
        }
    )
    snap = gcp_provider(fake_gcp, gcp_topology()).snapshot()
    assert [f.message for f in audit_peering(snap, "central", "east")] == [
        "gcp central->east: peering half on network central-vpc on central's side is INACTIVE, "
        "not active",
        "gcp central->east: no peering from east's network to central's",
    ]


def test_route_missing_in_one_direction(fake_gcp: FakeGcp) -> None:
    """East's pods are a custom route that central's side does not import."""
    fake_gcp.subnet_ranges[(GCP_PROJECT, "east-vpc")] = ["10.102.0.0/20"]
    fake_gcp.custom_routes[(GCP_PROJECT, "east-vpc")] = [PODS["east"]]
    p = applied(fake_gcp)
    fake_gcp.peering(GCP_PROJECT, "central-vpc", "netconform-central-to-east")[
        "importCustomRoutes"
    ] = False
    snap = p.snapshot()
    assert [f.message for f in audit_routes(snap, "central", "east")] == [
        "gcp central->east: network central-vpc in us-central1 (imported peering routes) has "
        f"no route to {PODS['east']} (peer east)"
    ]
    assert audit_routes(snap, "east", "central") == []


def test_denied_port_fails_naming_the_rule(fake_gcp: FakeGcp) -> None:
    p = applied(fake_gcp)
    fake_gcp.add_firewall(
        GCP_PROJECT,
        {
            "name": "deny-kafka",
            "priority": 900,
            "sourceRanges": ["10.0.0.0/8"],
            "denied": [{"IPProtocol": "tcp", "ports": ["9092"]}],
            "network": f"https://www.googleapis.com/compute/v1/projects/{GCP_PROJECT}/global/"
            "networks/east-vpc",
        },
    )
    snap = p.snapshot()
    (finding,) = audit_port(snap, "central", "east", 9092)
    assert finding.message == (
        f"gcp central->east: firewall of network east-vpc (project {GCP_PROJECT}) denies "
        f"(rule deny-kafka, priority 900) tcp/9092 from {PODS['central']} (peer central)"
    )
    assert audit_port(snap, "central", "east", 8081) == []


def test_missing_rule_fails_and_plan_updates_it(fake_gcp: FakeGcp) -> None:
    applied(fake_gcp)
    rule = fake_gcp.firewalls[(GCP_PROJECT, "netconform-west-from-east")]
    rule["allowed"] = [{"IPProtocol": "tcp", "ports": ["2181"]}]
    p = gcp_provider(fake_gcp, gcp_topology())
    (finding,) = audit_port(p.snapshot(), "east", "west", 2888)
    assert "does not allow tcp/2888 from 10.56.0.0/14 (peer east)" in finding.message
    changes = [c for c in p.plan() if c.action != "noop"]
    assert [(c.action, c.resource.split(":")[0]) for c in changes] == [
        ("update", "firewall netconform-west-from-east on west-vpc")
    ]
    p.apply(changes)
    patch = fake_gcp.server.sent("PATCH", "/global/firewalls/netconform-west-from-east")
    assert patch[0].body["allowed"][0]["ports"] == ["2181", "2888", "3888", "9092", "8081"]


def test_seed_003_overlap_is_refused_before_any_request(fake_gcp: FakeGcp) -> None:
    topo = gcp_topology(
        central={"pod_cidrs": ["10.120.0.0/16"]}, east={"pod_cidrs": ["10.120.0.0/16"]}
    )
    with pytest.raises(
        TopologyError,
        match=r"clusters central and east overlap: "
        r"10\.120\.0\.0/16 \(central\) and 10\.120\.0\.0/16 \(east\)",
    ):
        check_overlaps(topo)
    (finding,) = audit_overlap("gcp", topo.cluster("central"), topo.cluster("east"))
    assert finding.message == (
        "gcp central->east: clusters central and east overlap: "
        "10.120.0.0/16 (central) and 10.120.0.0/16 (east)"
    )
    assert fake_gcp.server.requests == []


def test_shared_network_needs_no_peering(fake_gcp: FakeGcp) -> None:
    shared = {"network": {"id": "central-vpc", "project": GCP_PROJECT}}
    p = applied(fake_gcp, east=shared)
    plan = p.plan()
    assert any(c.detail == "same network central-vpc" for c in plan)
    snap = p.snapshot()
    assert audit_peering(snap, "central", "east") == []
    assert audit_routes(snap, "east", "central") == []


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"cloud_region": "mars-north1"},
            f"gcp: unknown region 'mars-north1' for cluster east (project {GCP_PROJECT})",
        ),
        (
            {"network": {"id": "nope-vpc", "project": GCP_PROJECT}},
            f"gcp: VPC network nope-vpc of cluster east does not exist in project {GCP_PROJECT}",
        ),
    ],
    ids=["unknown-region", "missing-network"],
)
def test_bad_input_is_one_line(fake_gcp: FakeGcp, override: dict[str, Any], expected: str) -> None:
    with pytest.raises(CloudError) as err:
        gcp_provider(fake_gcp, gcp_topology(east=override)).plan()
    assert str(err.value) == expected


def test_permission_denied_mid_apply_says_what_was_applied(fake_gcp: FakeGcp) -> None:
    fake_gcp.forbidden.add("firewalls.create")
    p = gcp_provider(fake_gcp, gcp_topology())
    with pytest.raises(CloudError) as err:
        p.apply(p.plan())
    text = str(err.value)
    assert text.startswith(
        "gcp: permission denied: firewalls.insert netconform-central-from-east"
        ": Required 'compute.firewalls.create' permission"
    )
    assert "applied before it: peering netconform-central-to-east" in text
    assert "netconform-west-to-east on west-vpc" in text and "\n" not in text


def test_missing_credentials_is_one_line(
    fake_gcp: FakeGcp, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    p = GcpProvider(gcp_topology())
    with pytest.raises(CloudError) as err:
        p.plan()
    assert str(err.value) == (
        "gcp: no credentials (set GOOGLE_APPLICATION_CREDENTIALS or run "
        "`gcloud auth application-default login`)"
    )
    assert fake_gcp.server.requests == []
