"""Azure glue and audits: the real NetworkManagementClient against an ARM fake over TLS."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from fixtures.cloud import CloudAudits
from netconform.cloudaudit import AuditCase, audit_peering, audit_port, audit_routes
from netconform.errors import CloudError, TopologyError
from provisioning.azure import AzureProvider
from provisioning.cloud import check_overlaps, credentials_problem, print_plan
from tests.cloud.conftest import AZURE, azure_provider, azure_topology, vnet_id
from tests.cloud.fake_azure import FakeAzure

Cert = tuple[Path, Path]


def make(fake: FakeAzure, cert: Cert, **overrides: Any) -> AzureProvider:
    return azure_provider(fake, cert[0], azure_topology(**overrides))


def applied(fake: FakeAzure, cert: Cert, **overrides: Any) -> AzureProvider:
    p = make(fake, cert, **overrides)
    p.apply(p.plan())
    return make(fake, cert, **overrides)


def test_plan_then_apply_then_nothing_to_change(fake_azure: FakeAzure, tls_cert: Cert) -> None:
    p = make(fake_azure, tls_cert)
    plan = p.plan()
    out = io.StringIO()
    print_plan(plan, out)
    text = out.getvalue()
    assert "azure eastus2:" in text and "plan: 12 to change, 0 unchanged" in text
    assert "create vnet peering east-vnet -> west-vnet (east->west)" in text
    assert not fake_azure.server.sent("PUT"), "planning must not change anything"
    assert p.apply(plan).summary() == "applied: 12 created, 0 updated, 0 unchanged"
    again = make(fake_azure, tls_cert)
    second = again.plan()
    assert {c.action for c in second} == {"noop"}
    assert again.apply(second).summary() == "no changes: all 12 resources already as planned"
    peering = fake_azure.peering(vnet_id("central"), "netconform-to-east")["properties"]
    assert peering["peeringState"] == "Connected" and peering["allowForwardedTraffic"] is True


def test_requests_have_the_arm_wire_shape(fake_azure: FakeAzure, tls_cert: Cert) -> None:
    applied(fake_azure, tls_cert)
    put = fake_azure.server.sent("PUT", "/virtualNetworkPeerings/netconform-to-east")[0]
    assert put.path == vnet_id("central") + "/virtualNetworkPeerings/netconform-to-east"
    assert put.query["api-version"][0] >= "2024-01-01"
    assert put.headers["authorization"] == "Bearer netconform-test-token"
    assert put.body == {
        "properties": {
            "remoteVirtualNetwork": {"id": vnet_id("east")},
            "allowVirtualNetworkAccess": True,
            "allowForwardedTraffic": True,
            "allowGatewayTransit": False,
            "useRemoteGateways": False,
        }
    }
    rule = fake_azure.server.sent("PUT", "east-nsg/securityRules/netconform-from-central")[0]
    assert rule.body["properties"] == {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": 3000,
        "sourceAddressPrefixes": [AZURE["central"][1]],
        "sourcePortRange": "*",
        "destinationAddressPrefixes": [AZURE["east"][1]],
        "destinationPortRanges": ["2181", "2888", "3888", "9092", "8081"],
        "description": "netconform: peer central",
    }


def test_audits_pass_after_apply(fake_azure: FakeAzure, tls_cert: Cert) -> None:
    snap = applied(fake_azure, tls_cert).snapshot()
    for a in AZURE:
        for b in AZURE:
            if a != b:
                assert audit_peering(snap, a, b) == [] and audit_routes(snap, a, b) == []
                assert audit_port(snap, a, b, 2888) == []


def test_initiated_peering_fails_the_peering_audit(fake_azure: FakeAzure, tls_cert: Cert) -> None:
    p = make(fake_azure, tls_cert)
    first = next(c for c in p.plan() if c.resource.startswith("vnet peering central-vnet"))
    p.apply([first])
    snap = make(fake_azure, tls_cert).snapshot()
    assert [f.message for f in audit_peering(snap, "central", "east")] == [
        "azure central->east: VNet peering netconform-to-east on central's side is Initiated, "
        "not active",
        "azure central->east: no peering from east's network to central's",
    ]


def test_forwarded_traffic_off_fails_and_plan_updates_it(
    fake_azure: FakeAzure, tls_cert: Cert
) -> None:
    applied(fake_azure, tls_cert)
    fake_azure.peering(vnet_id("west"), "netconform-to-east")["properties"][
        "allowForwardedTraffic"
    ] = False
    p = make(fake_azure, tls_cert)
    assert [f.message for f in audit_peering(p.snapshot(), "east", "west")] == [
        "azure east->west: VNet peering netconform-to-east on west's side does not allow "
        "forwarded traffic"
    ]
    (change,) = [c for c in p.plan() if c.action != "noop"]
    assert change.action == "update" and change.resource.startswith("vnet peering west-vnet")


def test_route_missing_in_one_direction(fake_azure: FakeAzure, tls_cert: Cert) -> None:
    """East grew its address space; central's peering still routes only the old range."""
    cidrs = {
        "pod_cidrs": ["10.102.0.0/16"],
        "network": {
            "id": vnet_id("east"),
            "cidrs": ["10.102.0.0/16", "10.202.0.0/16"],
            "security_groups": ["east-nsg"],
        },
    }
    applied(fake_azure, tls_cert)
    fake_azure.add_address_space(vnet_id("east"), "10.202.0.0/16")
    snap = make(fake_azure, tls_cert, east=cidrs).snapshot()
    assert [f.message for f in audit_routes(snap, "central", "east")] == [
        "azure central->east: VNet central-vnet in canadacentral (peering routes) has no route "
        "to 10.202.0.0/16 (peer east)"
    ]
    assert audit_routes(snap, "east", "central") == []


def test_closed_port_fails_naming_the_deny_rule(fake_azure: FakeAzure, tls_cert: Cert) -> None:
    applied(fake_azure, tls_cert)
    fake_azure.add_rule(
        fake_azure_nsg("west"),
        "deny-zk-election",
        {
            "protocol": "Tcp",
            "sourceAddressPrefix": "10.101.0.0/16",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "3888",
            "access": "Deny",
            "priority": 100,
            "direction": "Inbound",
        },
    )
    snap = make(fake_azure, tls_cert).snapshot()
    (finding,) = audit_port(snap, "central", "west", 3888)
    assert (finding.pair, finding.resource, finding.port) == (
        "central->west",
        "nsg west-nsg in westus2",
        3888,
    )
    assert finding.message == (
        "azure central->west: nsg west-nsg in westus2 denies (rule deny-zk-election, priority "
        "100) tcp/3888 from 10.101.0.0/16 (peer central)"
    )
    assert audit_port(snap, "east", "west", 3888) == []


def test_default_rules_decide_without_peering(fake_azure: FakeAzure, tls_cert: Cert) -> None:
    """No peering, no rule: DenyAllInBound decides, and the message says so."""
    snap = make(fake_azure, tls_cert).snapshot()
    (finding,) = audit_port(snap, "east", "central", 9092)
    assert finding.message == (
        "azure east->central: nsg central-nsg in canadacentral denies (rule DenyAllInBound, "
        "priority 65500) tcp/9092 from 10.102.0.0/16 (peer east)"
    )


def fake_azure_nsg(name: str) -> str:
    return (
        vnet_id(name).replace("virtualNetworks", "networkSecurityGroups").replace("-vnet", "-nsg")
    )


def test_overlap_is_refused_before_any_request(fake_azure: FakeAzure) -> None:
    overlap = {
        "pod_cidrs": ["10.101.128.0/17"],
        "network": {
            "id": vnet_id("west"),
            "cidrs": ["10.101.128.0/17"],
            "security_groups": ["west-nsg"],
        },
    }
    with pytest.raises(TopologyError) as err:
        check_overlaps(azure_topology(west=overlap))
    assert str(err.value) == (
        "refusing to peer: clusters central and west overlap: "
        "10.101.0.0/16 (central) and 10.101.128.0/17 (west)"
    )
    assert fake_azure.server.requests == []


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"cloud_region": "eastus9"},
            "azure: unknown region 'eastus9' for cluster east: its VNet east-vnet is in 'eastus2'",
        ),
        (
            {"network": {"id": vnet_id("nope"), "security_groups": ["east-nsg"]}},
            "azure: VNet nope-vnet of cluster east does not exist in resource group mrc "
            "(subscription 00000000-0000-0000-0000-00000000c0de)",
        ),
        (
            {"network": {"id": vnet_id("east"), "security_groups": ["nope-nsg"]}},
            "azure: NSG nope-nsg of cluster east does not exist in resource group mrc",
        ),
    ],
    ids=["unknown-region", "missing-vnet", "missing-nsg"],
)
def test_bad_input_is_one_line(
    fake_azure: FakeAzure, tls_cert: Cert, override: dict[str, Any], expected: str
) -> None:
    with pytest.raises(CloudError) as err:
        make(fake_azure, tls_cert, east=override).plan()
    assert str(err.value) == expected


def test_permission_denied_mid_apply_says_what_was_applied(
    fake_azure: FakeAzure, tls_cert: Cert
) -> None:
    fake_azure.forbidden.add("networkSecurityGroups/securityRules/write")
    p = make(fake_azure, tls_cert)
    with pytest.raises(CloudError) as err:
        p.apply(p.plan())
    text = str(err.value)
    assert text.startswith(
        "azure: permission denied: securityRules.createOrUpdate "
        "netconform-from-east: AuthorizationFailed: The client"
    )
    assert "applied before it: vnet peering central-vnet -> east-vnet" in text
    assert "\n" not in text


def test_no_credentials_is_not_supported_not_failed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "IDENTITY_ENDPOINT",
        "MSI_ENDPOINT",
        "AZURE_FEDERATED_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path))
    assert credentials_problem("azure") == (
        "no Azure credentials (set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET, "
        "or run `az login`)"
    )
    audits = CloudAudits(azure_topology())
    with pytest.raises(pytest.skip.Exception, match=r"^not supported: no Azure credentials"):
        audits.check(AuditCase("peering", "azure", "central", "east"))
