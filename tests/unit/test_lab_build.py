"""The lab as a build target, offline: the plan of a lab build topology, every field the lab
cannot honour refused in one line naming cluster and field, the attached topology, and
`destroy --run-id` finding only the lab that run built."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from netconform.errors import TopologyError
from netconform.topology import load_topology
from provisioning import cli, lab_build
from provisioning.build import print_build_plan
from provisioning.lab import network, ownership
from provisioning.lab_build import LabBuilder, lab_prefix

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab-build.yaml"

BASE = """\
name: t
clusters:
  - name: central
    pod_cidrs: [10.101.0.0/16]
    cloud: lab
    build: {vpc_cidr: 10.101.0.0/16}
  - name: east
    pod_cidrs: [10.102.0.0/16]
    service_cidrs: [172.21.0.0/16]
    cloud: lab
    build: {vpc_cidr: 10.102.0.0/16}
"""


def builder(tmp_path: Path, text: str = BASE, run_id: str = "nc-unit-1") -> LabBuilder:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return LabBuilder(load_topology(path), run_id, tmp_path / ".build" / run_id / "lab")


def test_the_example_plans_the_daemon_then_everything_it_makes(tmp_path: Path) -> None:
    b = LabBuilder(load_topology(EXAMPLE), "nc-unit-1", tmp_path / "lab")
    b.validate()
    steps = b.plan()
    assert (steps[0].kind, steps[0].name, steps[0].run is not None) == (
        "lab daemon",
        lab_prefix("nc-unit-1"),
        True,
    )
    assert all(s.run is None for s in steps[1:])  # the daemon makes them all
    kinds = [s.kind for s in steps]
    assert kinds.count("vpc") == 3 and kinds.count("node") == 6
    assert kinds.count("kubernetes api") == 3 and kinds.count("vpc peering") == 3
    text = "\n".join(s.line() for s in steps)
    assert "vpc b" in text and "10.101.0.0/16: router 10.101.0.1" in text
    assert "services 172.22.0.0/16, namespace west" in text
    glue = b.glue_plan()
    assert [g.action for g in glue] == ["noop", "noop"]
    assert "done by the lab's up" in glue[1].line()
    out = io.StringIO()
    print_build_plan(steps + glue, out)
    assert out.getvalue().splitlines()[-1] == "build plan: 17 to create, 2 unchanged, about 10s"


def test_the_lab_plan_honours_names_ranges_and_node_count(tmp_path: Path) -> None:
    text = BASE.replace("name: east", "name: tokyo").replace("16}", "16, node_count: 3}")
    b = builder(tmp_path, text)
    b.validate()
    lab = b.lab_plan()
    assert [r.name for r in lab.regions] == ["central", "tokyo"]
    assert [r.vpc_cidr for r in lab.regions] == ["10.101.0.0/16", "10.102.0.0/16"]
    assert [r.service_cidr for r in lab.regions] == ["10.200.0.0/16", "172.21.0.0/16"]
    assert [n.pod_cidr for n in lab.regions[1].nodes] == [
        "10.102.1.0/24",
        "10.102.2.0/24",
        "10.102.3.0/24",
    ]
    assert lab.prefix == lab_prefix("nc-unit-1") and lab.owner.endswith("nc-unit-1/lab")


def east(line: str, new: str) -> str:
    """BASE with one of east's lines replaced."""
    head, tail = BASE.split("  - name: east\n")
    assert line in tail, line
    return head + "  - name: east\n" + tail.replace(line, new)


REFUSED = [
    (east("build: {vpc_cidr: 10.102.0.0/16}", "build: {vpc_cidr: 10.102.0.0/16, node_count: 3}"),
     "cluster east: build.node_count: the lab gives its region 2 (east) as many nodes as every "
     "other region (central: 2), not 3"),
    (east("build: {vpc_cidr: 10.102.0.0/16}",
          "build: {vpc_cidr: 10.102.0.0/16, kubernetes_version: '1.31'}"),
     "cluster east: build.kubernetes_version: the lab gives its region 2 (east) Kubernetes 1.32 "
     "only, not '1.31'"),
    (east("build: {vpc_cidr: 10.102.0.0/16}",
          "build: {vpc_cidr: 10.102.0.0/16, machine_type: m5.large}"),
     "cluster east: build.machine_type: the lab gives its region 2 (east) nodes that are "
     "network namespaces (no machine type), not 'm5.large'"),
    (east("pod_cidrs: [10.102.0.0/16]", "pod_cidrs: [10.102.0.0/17]"),
     "cluster east: pod_cidrs: the lab's pods take addresses from their node's slice of the "
     "whole VPC: [10.102.0.0/16], not [10.102.0.0/17]"),
    (east("pod_cidrs: [10.102.0.0/16]", "pod_cidrs: [10.102.0.0/24]").replace(
        "{vpc_cidr: 10.102.0.0/16}", "{vpc_cidr: 10.102.0.0/24}"),
     "cluster east: build.vpc_cidr: a lab VPC is a /16 inside 10.0.0.0/8 (10.X.0.0/16), "
     "not 10.102.0.0/24"),
    (east("service_cidrs: [172.21.0.0/16]", "service_cidrs: [172.21.0.0/16, 172.22.0.0/16]"),
     "cluster east: service_cidrs: the lab serves one service range per cluster, not 2"),
    (east("service_cidrs: [172.21.0.0/16]", "service_cidrs: [10.200.0.0/16]"),
     "cluster east: service_cidrs: 10.200.0.0/16 overlaps service_cidrs 10.200.0.0/16 "
     "(cluster central); the lab routes every range in one world"),
    (east("service_cidrs: [172.21.0.0/16]", "service_cidrs: [198.18.0.0/16]"),
     "cluster east: service_cidrs: 198.18.0.0/16 overlaps its LoadBalancer space "
     "198.18.0.0/15 (the lab)"),
    (east("cloud: lab", "cloud: lab\n    context: mrc-east"),
     "cluster east: context: the lab's is 'lab-east', not 'mrc-east' (a lab build cannot "
     "honour it)"),
    (east("cloud: lab", "cloud: lab\n    namespace: apps"),
     "cluster east: namespace: the lab's is 'east', not 'apps'"),
    (east("cloud: lab", "cloud: lab\n    cloud_region: us-east-2"),
     "cluster east: cloud_region: the lab's is none (remove the key), not 'us-east-2'"),
    (BASE.replace("name: east", "name: world"), "cluster world: name: a lab region is named"),
    (BASE + "kubeconfig: k.yaml\n", "kubeconfig: a lab build writes its contexts into its "
     "state dir's kubeconfig; remove it from the build topology"),
    (BASE + "runner_netns: x-world\n", "runner_netns: a lab build's runner is in its world"),
    (BASE + "ports: {closed: [23]}\n",
     "ports.closed: the lab's firewall drops 22 between regions, not 23"),
    (BASE + "  - name: west\n    pod_cidrs: [10.103.0.0/16]\n",
     "cluster west: build: a lab build builds every cluster of the topology (west has no "
     "build section)"),
    (BASE + "  - name: west\n    pod_cidrs: [10.103.0.0/16]\n    cloud: aws\n"
     "    cloud_region: us-west-2\n    build: {vpc_cidr: 10.103.0.0/16}\n",
     "cluster west: cloud: a lab build builds lab clusters only, not aws ones"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=range(len(REFUSED)))
def test_what_the_lab_cannot_honour_is_refused_naming_cluster_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(TopologyError) as err:
        builder(tmp_path, text).validate()
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_cli_plans_a_lab_build_and_refuses_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert cli.main(["build", "--topology", str(EXAMPLE), "--dry-run", "--run-id", "r1"], out) == 0
    text = out.getvalue()
    assert text.startswith("run id: r1\n") and text.rstrip().endswith("dry run: nothing created")
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("node_count: 2}", "node_count: 2, machine_type: x}"))
    assert cli.main(["build", "--topology", str(bad), "--dry-run"], io.StringIO()) == 3
    err = capsys.readouterr().err
    assert err.startswith("netconform-cloud: error: cluster central: build.machine_type:")


def test_attached_topology_is_the_lab_as_built(tmp_path: Path) -> None:
    b = builder(tmp_path)
    source = tmp_path / "lab.yaml"
    dest = lab_build.write_attached(b, source, tmp_path / "out" / "topology.yaml")
    doc = yaml.safe_load(dest.read_text())
    assert "build" not in doc["clusters"][0] and [c["context"] for c in doc["clusters"]] == [
        "lab-central",
        "lab-east",
    ]
    assert doc["clusters"][0]["service_cidrs"] == ["10.200.0.0/16"]
    assert doc["runner_netns"] == f"{lab_prefix('nc-unit-1')}-world"
    assert Path(doc["kubeconfig"]) == (b.paths.root / "kubeconfig").resolve()
    topo = load_topology(dest)  # a lab topology the suites attach to
    assert topo.clusters[1].service_cidrs == ("172.21.0.0/16",)


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Owner markers and `ip netns list` of a pretend machine."""
    monkeypatch.setattr(ownership, "NETNS_MARKERS", tmp_path / "netns")
    monkeypatch.setattr(ownership, "PREFIX_CLAIMS", tmp_path / "prefixes")
    names: dict[str, list[str]] = {"netns": []}
    monkeypatch.setattr(
        network, "list_netns", lambda p: [n for n in names["netns"] if n.startswith(f"{p}-")]
    )
    return names


def test_destroy_by_run_id_finds_that_lab_and_nothing_of_another(
    tmp_path: Path, machine: dict[str, list[str]]
) -> None:
    b = builder(tmp_path, run_id="nc-mine")
    prefix = lab_prefix("nc-mine")
    assert b.find("nc-mine") == []  # nothing built yet
    # another lab took the same prefix by hand (`netconform-lab up --prefix`): not this run's
    other = tmp_path / "elsewhere" / ".lab"
    ownership.claim(prefix, str(other), 1)
    ownership.mark([f"{prefix}-world"], str(other))
    machine["netns"] = [f"{prefix}-world"]
    assert b.find("nc-mine") == []
    # this run's lab, its record and namespaces marked as its state dir's
    b.paths.root.mkdir(parents=True)
    (b.paths.root / "build.json").write_text(json.dumps({"run_id": "nc-mine", "prefix": prefix}))
    ownership.mark([f"{prefix}-east-rtr"], ownership.owner_of_dir(b.paths.root))
    machine["netns"].append(f"{prefix}-east-rtr")
    found = b.find("nc-mine")
    assert [(f.id, Path(f.parent)) for f in found] == [(prefix, b.paths.root.resolve())]
    assert b.find("nc-other") == []  # another run id: another prefix, another state dir
