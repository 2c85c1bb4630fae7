"""`netconform-cloud build|destroy` on GCP: the real google-cloud-container, -compute and
-resource-manager clients (REST transport, anonymous credentials) against tests.cloud.fake_gke
on loopback, pointed there by gcloud's own endpoint overrides, through the CLI."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.auth.credentials import AnonymousCredentials

from provisioning import cli, gcp_build, gcp_creates
from provisioning.build import MANAGED_BY, RUN_ID_TAG
from tests.cloud.fake_gke import FakeGke

PROJECT = "netconform-test"
CLUSTERS = {  # name: (region, subnet, pods, services)
    "central": ("us-central1", "10.101.0.0/20", "10.52.0.0/14", "10.200.0.0/20"),
    "east": ("us-east4", "10.102.0.0/20", "10.56.0.0/14", "10.200.16.0/20"),
    "west": ("us-west1", "10.103.0.0/20", "10.60.0.0/14", "10.200.32.0/20"),
}


@pytest.fixture
def gke(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGke]:
    fake = FakeGke()
    fake.server.start()
    for api in ("COMPUTE", "CONTAINER", "CLOUDRESOURCEMANAGER"):
        monkeypatch.setenv(f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api}", fake.server.url + "/")
    monkeypatch.setattr(gcp_build, "default_credentials", AnonymousCredentials)
    monkeypatch.setattr(gcp_build.GcpBuilder, "poll", 0.05)
    yield fake
    fake.server.stop()


def topology_file(tmp_path: Path, **change: Any) -> Path:
    clusters = []
    for name, (region, subnet, pods, services) in CLUSTERS.items():
        build = {
            "vpc_cidr": subnet,
            "kubernetes_version": "1.32",
            "node_count": 2,
            "project": PROJECT,
        }
        build.update(change.get(name, {}))
        clusters.append(
            {
                "name": name,
                "context": f"gke-{name}",
                "pod_cidrs": [pods],
                "service_cidrs": [services],
                "cloud": "gcp",
                "cloud_region": change.get(f"{name}_region", region),
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


def tagged(fake: FakeGke, key: str = MANAGED_BY, value: str = "netconform") -> list[str]:
    """Every resource left with the tag: clusters by label, the rest by description."""
    want = f"{key}={value}"
    left = [c["name"] for c in fake.clusters.values() if c["resourceLabels"].get(key) == value]
    for kind, items in (
        ("network", fake.networks),
        ("subnet", fake.subnets),
        ("firewall", fake.firewalls),
    ):
        left += [f"{kind} {i['name']}" for i in items.values() if want in i.get("description", "")]
    return left


def test_dry_run_prints_every_resource_and_creates_nothing(gke: FakeGke, tmp_path: Path) -> None:
    code, text = run(["build", "--topology", str(topology_file(tmp_path)), "--dry-run"])
    assert code == 0, text
    assert "create gcp global         network mrc-central  (project netconform-test" in text
    assert (
        "create gcp us-east4       subnet mrc-east  (10.102.0.0/20; secondary pods "
        "10.56.0.0/14, services 10.200.16.0/20)" in text
    )
    assert (
        "gke cluster mrc-west  (version 1.32, vpc-native, 2 x e2-standard-4 in us-west1-a" in text
    )
    assert "kubeconfig context gke-central" in text and "network peering central<->east" in text
    assert "build plan: 15 to create, 1 unchanged, about 11 min" in text
    assert "dry run: nothing created" in text
    assert tagged(gke) == [] and not gke.server.sent("POST", "/clusters")


def test_build_labels_everything_writes_contexts_glues_then_plans_only_noops(
    gke: FakeGke, tmp_path: Path
) -> None:
    topo = str(topology_file(tmp_path))
    code, text = run(["build", "--topology", topo, "--run-id", "nc-gcp-1"])
    assert code == 0, text
    assert "wait   gke cluster mrc-east: PROVISIONING after" in text
    assert "wait   gke cluster mrc-east: RUNNING after" in text and "(cluster_ready 1800s)" in text
    assert "wait   node pool mrc-east/nodes: RUNNING after" in text
    assert "gcp: applied: 12 created" in text  # 6 peering sides, 6 firewall rules
    body = gke.server.sent("POST", "/locations/us-east4/clusters")[0].body["cluster"]
    assert body["resourceLabels"] == {
        "managed-by": "netconform",
        "netconform-run-id": "nc-gcp-1",
        "netconform-topology": "mrc",
        "netconform-cluster": "east",
    }
    assert body["ipAllocationPolicy"] == {
        "useIpAliases": True,
        "clusterSecondaryRangeName": "pods",
        "servicesSecondaryRangeName": "services",
    }
    assert body["nodePools"][0]["config"]["machineType"] == "e2-standard-4"
    assert body["initialClusterVersion"] == "1.32" and body["locations"] == ["us-east4-a"]
    subnet = gke.subnets[(PROJECT, "us-east4", "mrc-east")]
    assert [r["rangeName"] for r in subnet["secondaryIpRanges"]] == ["pods", "services"]
    assert all(p["state"] == "ACTIVE" for n in gke.networks.values() for p in n["peerings"])
    assert len(tagged(gke, RUN_ID_TAG, "nc-gcp-1")) == 3 + 3 + 3 + 6
    kube = yaml.safe_load((tmp_path / "built.kubeconfig").read_text())
    ctx = {c["name"]: c["context"] for c in kube["contexts"]}
    assert ctx["gke-east"] == {
        "cluster": "gke_netconform-test_us-east4_mrc-east",
        "user": "gke_netconform-test_us-east4_mrc-east",
    }
    user = next(u for u in kube["users"] if u["name"] == ctx["gke-east"]["user"])["user"]
    assert user["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert user["exec"]["provideClusterInfo"] is True
    server = next(c for c in kube["clusters"] if c["name"] == ctx["gke-east"]["cluster"])
    assert server["cluster"]["server"].startswith("https://34.1.")

    code, again = run(["build", "--topology", topo, "--dry-run"])
    assert code == 0, again
    assert "build plan: 0 to create, 25 unchanged" in again and "run id: nc-gcp-1" in again
    code, gone = run(["destroy", "--topology", topo])
    assert code == 0, gone
    assert "refused" not in gone and tagged(gke) == []
    assert not gke.networks and not gke.clusters and not gke.firewalls


def test_destroy_touches_nothing_without_the_tag_and_names_a_refusal(
    gke: FakeGke, tmp_path: Path
) -> None:
    topo = str(topology_file(tmp_path))
    gke.add_network(PROJECT, "theirs", ["10.9.0.0/16"])
    assert run(["build", "--topology", topo])[0] == 0
    gke.add_firewall(
        PROJECT,
        {
            "name": "their-ssh",
            "network": gcp_creates.network_url(PROJECT, "mrc-west"),
            "sourceRanges": ["0.0.0.0/0"],
        },
    )
    code, text = run(["destroy", "--topology", topo])
    assert code == 9
    assert (
        "refused gcp global network mrc-west: gcp: networks.delete mrc-west failed (400): The "
        "projects/netconform-test/global/networks/mrc-west resource is already being used by "
        "'projects/netconform-test/global/firewalls/their-ssh'" in text
    )
    assert "; 1 refused to go" in text
    assert (PROJECT, "theirs") in gke.networks and (PROJECT, "their-ssh") in gke.firewalls
    assert tagged(gke) == ["network mrc-west"]


def test_a_403_on_one_create_names_the_permission_and_rolls_back(
    gke: FakeGke, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gke.forbidden.add("container.clusters.create")
    code, text = run(["build", "--topology", str(topology_file(tmp_path))])
    err = capsys.readouterr().err
    assert code == 9, text
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err == (
        "netconform-cloud: error: gcp: permission denied: clusters.create mrc-central: Required "
        '"container.clusters.create" permission(s) for "projects/netconform-test". -- creating '
        "gke cluster mrc-central; rolled back 6 resources this run created\n"
    )
    assert tagged(gke) == []


def test_a_missing_permission_is_found_before_any_create(
    gke: FakeGke, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gke.missing_permissions.add("compute.subnetworks.create")
    code, _ = run(["build", "--topology", str(topology_file(tmp_path))])
    assert code == 9
    assert capsys.readouterr().err == (
        "netconform-cloud: error: gcp: missing permission compute.subnetworks.create on project "
        "netconform-test (testIamPermissions, before any create)\n"
    )
    assert not gke.server.sent("POST", "/global/networks")


def test_an_interrupted_build_is_destroyed_completely_by_run_id(
    gke: FakeGke,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    made: list[str] = []
    real = gcp_creates.create_subnet

    def then_interrupt(self: gcp_build.GcpBuilder, c: Any) -> Any:
        found = real(self, c)
        made.append(c.name)
        if len(made) == 2:  # between two creates: SIGINT, as Ctrl-C sends it
            os.kill(os.getpid(), signal.SIGINT)
        return found

    monkeypatch.setattr(gcp_creates, "create_subnet", then_interrupt)
    topo = str(topology_file(tmp_path))
    code, _ = run(["build", "--topology", topo, "--run-id", "nc-cut-2"])
    assert code == 130
    assert "destroy --run-id nc-cut-2" in capsys.readouterr().err
    assert len(tagged(gke, RUN_ID_TAG, "nc-cut-2")) >= 3
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    code, text = run(["destroy", "--run-id", "nc-cut-2", "--cloud", "gcp"])
    assert code == 0, text
    assert tagged(gke) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"east_region": "us-mars1"}, "cluster east: cloud_region: gcp has no region 'us-mars1'"),
        (
            {"west": {"kubernetes_version": "1.19"}},
            "cluster west: build.kubernetes_version: GKE offers 1.31, 1.32, 1.33 in us-west1, "
            "not '1.19'",
        ),
        (
            {"central": {"machine_type": "e2-huge"}},
            "cluster central: build.machine_type: us-central1-a has no machine type 'e2-huge'",
        ),
        (
            {"east": {"vpc_cidr": "10.56.0.0/20"}},
            "clusters[1].build.vpc_cidr (line",
        ),
    ],
)
def test_bad_input_is_one_line_before_anything_is_created(
    gke: FakeGke,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, Any],
    message: str,
) -> None:
    code, _ = run(["build", "--topology", str(topology_file(tmp_path, **change))])
    err = capsys.readouterr().err
    assert code == 3 and err.count("\n") == 1, err
    assert err.startswith("netconform-cloud: error: ") and message in err, err
    assert not [r for r in gke.server.requests if r.method != "GET" and ":test" not in r.path]
