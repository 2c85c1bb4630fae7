"""The topology's build section: defaults per cloud, and every misfit refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from netconform.errors import TopologyError
from netconform.topology import ClusterBuild, load_topology

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed-000-eks.yaml"

BASE = """
name: b
build: {confirm: true}
clusters:
  - name: central
    pod_cidrs: [10.101.0.0/16]
    cloud: aws
    cloud_region: ca-central-1
    build: {BUILD}
"""


def load(tmp_path: Path, build: str, text: str = BASE) -> object:
    path = tmp_path / "t.yaml"
    path.write_text(text.replace("{BUILD}", build))
    return load_topology(path)


def test_seed_000_example_builds_three_vpc_cni_clusters() -> None:
    topo = load_topology(EXAMPLE)
    assert [c.build and c.build.vpc_cidr for c in topo.clusters] == [
        "10.101.0.0/16",
        "10.102.0.0/16",
        "10.103.0.0/16",
    ]
    assert {c.build.network_mode for c in topo.clusters if c.build} == {"vpc-cni"}
    assert topo.build.confirm is False


def test_defaults_come_from_the_cloud(tmp_path: Path) -> None:
    topo = load(tmp_path, "{vpc_cidr: 10.101.0.0/16}")
    build = topo.clusters[0].build  # type: ignore[attr-defined]
    assert build == ClusterBuild("10.101.0.0/16", "1.31", 2, "m5.large", "vpc-cni")
    assert topo.build.confirm is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ("{}", "clusters[0].build.vpc_cidr: missing required key"),
        ("{vpc_cidr: 10.300.0.0/16}", "clusters[0].build.vpc_cidr (line 9): expected an IPv4 CIDR"),
        (
            "{vpc_cidr: 10.101.0.0/16, network_mode: vpc-native}",
            "clusters[0].build.network_mode (line 9): expected vpc-cni (the flat pod network "
            "of aws), got 'vpc-native'",
        ),
        (
            "{vpc_cidr: 10.101.0.0/16, node_count: 0}",
            "clusters[0].build.node_count (line 9): expected a number between 1 and 100",
        ),
        (
            "{vpc_cidr: 10.200.0.0/16}",
            "clusters[0].build.vpc_cidr (line 9): expected a range holding pod_cidrs[0] "
            "10.101.0.0/16 (vpc-cni: pods take network addresses), got '10.200.0.0/16'",
        ),
        ("{vpc_cidr: 10.101.0.0/16, nodes: 3}", "unknown key 'nodes' in clusters[0].build"),
    ],
)
def test_bad_build_is_one_line_naming_the_cluster_and_key(
    tmp_path: Path, build: str, message: str
) -> None:
    with pytest.raises(TopologyError) as err:
        load(tmp_path, build)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_vpc_native_pods_lie_outside_the_subnet(tmp_path: Path) -> None:
    text = BASE.replace("cloud: aws", "cloud: gcp").replace("ca-central-1", "us-central1")
    with pytest.raises(TopologyError) as err:
        load(tmp_path, "{vpc_cidr: 10.101.0.0/20}", text)
    assert (
        "clusters[0].build.vpc_cidr (line 9): expected a range apart from pod_cidrs[0] "
        "10.101.0.0/16 (vpc-native: pods take the subnet's secondary range)" in str(err.value)
    )
    topo = load(tmp_path, "{vpc_cidr: 10.200.0.0/20, project: p}", text)
    build = topo.clusters[0].build  # type: ignore[attr-defined]
    assert (build.network_mode, build.machine_type, build.project) == (
        "vpc-native",
        "e2-standard-4",
        "p",
    )


def test_build_on_a_cloud_that_does_not_build_is_refused(tmp_path: Path) -> None:
    text = BASE.replace("cloud: aws", "cloud: none")
    with pytest.raises(TopologyError, match=r"clusters\[0\].build .*cloud aws, gcp, azure"):
        load(tmp_path, "{vpc_cidr: 10.101.0.0/16}", text)


def test_build_beside_an_existing_network_is_refused(tmp_path: Path) -> None:
    text = BASE.replace("    build: {BUILD}", "    network: {id: vpc-1}\n    build: {BUILD}")
    with pytest.raises(TopologyError, match=r"either build .* or network"):
        load(tmp_path, "{vpc_cidr: 10.101.0.0/16}", text)


def test_confirm_must_be_a_boolean(tmp_path: Path) -> None:
    text = BASE.replace("{confirm: true}", "{confirm: yes please}")
    with pytest.raises(TopologyError, match=r"build.confirm \(line 3\): expected true or false"):
        load(tmp_path, "{vpc_cidr: 10.101.0.0/16}", text)
