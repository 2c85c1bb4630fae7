"""`netconform-cloud build|destroy` on Azure: the real azure-mgmt-containerservice, -network,
-resource, -compute and -authorization clients against tests.cloud.fake_aks over TLS on
loopback (a token credential that never leaves the process), through the CLI."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioning import azure_build, azure_creates, cli
from provisioning.build import MANAGED_BY, RUN_ID_TAG
from tests.cloud.conftest import FakeToken
from tests.cloud.fake_aks import FakeAks

SUB = "00000000-0000-0000-0000-00000000c0de"
CLUSTERS = {  # name: (location, vnet = pods, services)
    "central": ("canadacentral", "10.101.0.0/16", "172.20.0.0/16"),
    "east": ("eastus2", "10.102.0.0/16", "172.21.0.0/16"),
    "west": ("westus2", "10.103.0.0/16", "172.22.0.0/16"),
}


@pytest.fixture
def arm(tls_cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAks]:
    fake = FakeAks(str(tls_cert[0]), str(tls_cert[1]))
    fake.server.start()
    monkeypatch.setenv("NETCONFORM_AZURE_ENDPOINT", fake.server.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_cert[0]))
    monkeypatch.setattr(azure_build, "default_credential", FakeToken)
    monkeypatch.setattr(azure_build.AzureBuilder, "poll", 0.05)
    yield fake
    fake.server.stop()


def topology_file(tmp_path: Path, **change: Any) -> Path:
    clusters = []
    for name, (location, cidr, services) in CLUSTERS.items():
        build = {
            "vpc_cidr": cidr,
            "kubernetes_version": "1.32",
            "node_count": 2,
            "subscription": SUB,
        }
        build.update(change.get(name, {}))
        clusters.append(
            {
                "name": name,
                "context": f"aks-{name}",
                "pod_cidrs": [cidr],
                "service_cidrs": [services],
                "cloud": "azure",
                "cloud_region": change.get(f"{name}_region", location),
                "build": build,
            }
        )
    doc = {"name": "mrc", "kubeconfig": "built.kubeconfig", "clusters": clusters}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(argv, out), out.getvalue()


def tagged(fake: FakeAks, key: str = MANAGED_BY, value: str = "netconform") -> list[str]:
    left = []
    for store in (fake.groups, fake.vnets, fake.nsgs, fake.clusters):
        left += [r["name"] for r in store.values() if (r.get("tags") or {}).get(key) == value]
    return left


def test_dry_run_prints_every_resource_and_creates_nothing(arm: FakeAks, tmp_path: Path) -> None:
    code, text = run(["build", "--topology", str(topology_file(tmp_path)), "--dry-run"])
    assert code == 0, text
    assert f"create azure canadacentral resource group mrc-central  (subscription {SUB})" in text
    assert "vnet mrc-east  (10.102.0.0/16, subnet nodes 10.102.0.0/16 (nodes and pods))" in text
    assert (
        "aks cluster mrc-west  (version 1.32, azure-cni, services 172.22.0.0/16, 2 x "
        "Standard_D4s_v5; up beside the others (cluster_ready))  ~6 min" in text
    )
    assert "vnet peering central<->east" in text and "kubeconfig context aks-central" in text
    assert "build plan: 18 to create, 1 unchanged, about 8 min" in text
    assert tagged(arm) == [] and not arm.server.sent("PUT")


def test_build_tags_everything_writes_contexts_glues_then_plans_only_noops(
    arm: FakeAks, tmp_path: Path
) -> None:
    topo = str(topology_file(tmp_path))
    code, text = run(["build", "--topology", topo, "--run-id", "nc-az-1"])
    assert code == 0, text
    assert "wait   aks cluster mrc-east: Creating after" in text
    assert (
        "wait   aks cluster mrc-east: Succeeded after" in text and "(cluster_ready 1800s)" in text
    )
    assert "wait   node pool mrc-east/nodes: Succeeded after" in text
    assert "azure: applied: 12 created" in text  # 6 peering sides, 6 NSG rules
    put = arm.server.sent("PUT", "/managedClusters/mrc-east")[0].body
    assert put["tags"]["netconform-run-id"] == "nc-az-1" and put["tags"][MANAGED_BY] == "netconform"
    props = put["properties"]
    assert props["networkProfile"] == {
        "networkPlugin": "azure",
        "serviceCidr": "172.21.0.0/16",
        "dnsServiceIP": "172.21.0.10",
    }
    pool = props["agentPoolProfiles"][0]
    assert pool["vmSize"] == "Standard_D4s_v5" and pool["count"] == 2
    assert pool["vnetSubnetID"].endswith(
        "/resourceGroups/mrc-east/providers/Microsoft.Network/"
        "virtualNetworks/mrc-east/subnets/nodes"
    )
    assert props["kubernetesVersion"] == "1.32"
    assert len(tagged(arm, RUN_ID_TAG, "nc-az-1")) == 12
    vnet = next(v for v in arm.vnets.values() if v["name"] == "mrc-east")
    assert {
        p["properties"]["peeringState"] for p in vnet["properties"]["virtualNetworkPeerings"]
    } == {"Connected"}
    kube = yaml.safe_load((tmp_path / "built.kubeconfig").read_text())
    ctx = {c["name"]: c["context"] for c in kube["contexts"]}
    assert ctx["aks-east"] == {"cluster": "mrc-east", "user": "clusterUser_mrc-east_mrc-east"}
    server = next(c for c in kube["clusters"] if c["name"] == "mrc-east")["cluster"]["server"]
    assert server.startswith("https://mrc-east-") and server.endswith(".azmk8s.io:443")

    code, again = run(["build", "--topology", topo, "--dry-run"])
    assert code == 0, again
    assert "build plan: 0 to create, 28 unchanged" in again and "run id: nc-az-1" in again
    code, gone = run(["destroy", "--topology", topo])
    assert code == 0, gone
    assert "refused" not in gone and tagged(arm) == []
    assert not arm.groups and not arm.clusters and not arm.vnets


def test_destroy_touches_nothing_without_the_tag_and_names_a_refusal(
    arm: FakeAks, tmp_path: Path
) -> None:
    topo = str(topology_file(tmp_path))
    assert run(["build", "--topology", topo])[0] == 0
    theirs = dict(next(c for c in arm.clusters.values() if c["name"] == "mrc-west"))
    theirs = {
        **theirs,
        "name": "theirs",
        "tags": {},
        "id": theirs["id"].replace("mrc-west", "theirs"),
    }
    theirs["id"] = theirs["id"].replace("/resourceGroups/theirs/", "/resourceGroups/mrc-west/")
    arm.clusters[theirs["id"].lower()] = theirs
    arm.reads[theirs["id"].lower()] = 0
    code, text = run(["destroy", "--topology", topo])
    assert code == 9, text
    assert (
        "refused azure westus2 vnet mrc-west: azure: virtualNetworks.delete mrc-west failed: "
        "InUseSubnetCannotBeDeleted: Subnet nodes is in use by"
    ) in text
    assert (
        "refused azure westus2 resource group mrc-west: azure: resource group mrc-west still "
        "holds mrc-west, mrc-west-nodes, theirs"
    ) in text
    assert "; 3 refused to go" in text  # the VNet, then its NSG (still on the subnet), the group
    assert theirs["id"].lower() in arm.clusters
    assert sorted(tagged(arm)) == ["mrc-west", "mrc-west", "mrc-west-nodes"]


def test_a_403_on_one_create_names_the_permission_and_rolls_back(
    arm: FakeAks, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arm.forbidden.add("Microsoft.ContainerService/managedClusters/write")
    code, text = run(["build", "--topology", str(topology_file(tmp_path))])
    err = capsys.readouterr().err
    assert code == 9, text
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        "netconform-cloud: error: azure: permission denied: managedClusters.createOrUpdate "
        "mrc-central: AuthorizationFailed: The client 'netconform-test' does not have "
        "authorization to perform action 'Microsoft.ContainerService/managedClusters/write'"
    ), err
    assert err.endswith(
        "-- creating aks cluster mrc-central; rolled back 9 resources this run created\n"
    ), err
    assert tagged(arm) == []


def test_a_missing_permission_stops_before_anything_is_built(
    arm: FakeAks, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arm.not_actions.append("Microsoft.ContainerService/managedClusters/write")
    code, _ = run(["build", "--topology", str(topology_file(tmp_path))])
    err = capsys.readouterr().err
    assert code == 9
    assert err.startswith(
        "netconform-cloud: error: azure: missing permission "
        "Microsoft.ContainerService/managedClusters/write on resource group mrc-central "
        "(Microsoft.Authorization permissions, before anything is built in it) -- creating "
        "resource group mrc-central; rolled back 0 resources this run created"
    ), err
    assert tagged(arm) == [] and not arm.server.sent("PUT", "/virtualNetworks/")


def test_an_interrupted_build_is_destroyed_completely_by_run_id(
    arm: FakeAks,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    made: list[str] = []
    real = azure_creates.create_vnet

    def then_interrupt(self: azure_build.AzureBuilder, c: Any) -> Any:
        found = real(self, c)
        made.append(c.name)
        if len(made) == 2:  # between two creates: SIGINT, as Ctrl-C sends it
            os.kill(os.getpid(), signal.SIGINT)
        return found

    monkeypatch.setattr(azure_creates, "create_vnet", then_interrupt)
    code, _ = run(["build", "--topology", str(topology_file(tmp_path)), "--run-id", "nc-cut-3"])
    assert code == 130
    assert "destroy --run-id nc-cut-3" in capsys.readouterr().err
    assert len(tagged(arm, RUN_ID_TAG, "nc-cut-3")) >= 6
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB)
    code, text = run(["destroy", "--run-id", "nc-cut-3", "--cloud", "azure"])
    assert code == 0, text
    assert tagged(arm) == [] and not arm.groups


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"east_region": "marsnorth"},
            "cluster east: cloud_region: azure has no region 'marsnorth' offering AKS",
        ),
        (
            {"west": {"kubernetes_version": "1.19"}},
            "cluster west: build.kubernetes_version: AKS offers 1.31, 1.32, 1.33 in westus2, "
            "not '1.19'",
        ),
        (
            {"central": {"machine_type": "Standard_Huge"}},
            "cluster central: build.machine_type: canadacentral has no VM size 'Standard_Huge'",
        ),
        ({"east": {"vpc_cidr": "10.101.0.0/16"}}, "refusing to peer: clusters central and east"),
    ],
)
def test_bad_input_is_one_line_before_anything_is_created(
    arm: FakeAks,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, Any],
    message: str,
) -> None:
    path = topology_file(tmp_path, **change)
    if "vpc_cidr" in str(change):
        path.write_text(path.read_text().replace("10.102.0.0/16", "10.101.0.0/16"))
    code, _ = run(["build", "--topology", str(path)])
    err = capsys.readouterr().err
    assert code == 3 and err.count("\n") == 1, err
    assert err.startswith(f"netconform-cloud: error: {message}"), err
    assert not [r for r in arm.server.requests if r.method != "GET"]
