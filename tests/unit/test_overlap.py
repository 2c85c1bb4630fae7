"""Seed 003's overlap: the layout's plan, and the engine leaving out (and explaining) the pod-IP
cases between clusters whose ranges overlap, while internal LBs between them stay in."""

from __future__ import annotations

from pathlib import Path

import pytest

from netconform.check import Check, without_overlaps
from netconform.cidr import between, in_overlap, overlap_reason
from netconform.errors import LabError
from netconform.outcomes import Endpoint, load_balancer
from netconform.probes import Probe
from netconform.result import Result
from netconform.scenario import Scenario
from netconform.topology import Cluster, ClusterName, Namespace, Region, Topology
from netconform.vantage import RunnerVantage
from provisioning.lab import layouts
from provisioning.lab.control import LabPaths
from provisioning.lab.daemon import lab_topology
from provisioning.lab.router_chains import router_filter

REASON = "c1 and c2 overlap: 10.120.0.0/16; reached through their internal load balancers instead"


def cluster(name: str, cidr: str) -> Cluster:
    return Cluster(ClusterName(name), f"lab-{name}", Region(name), Namespace(name), (cidr,))


def topology(*clusters: Cluster) -> Topology:
    return Topology("t", clusters)


OVERLAP = topology(cluster("c1", "10.120.0.0/16"), cluster("c2", "10.120.0.0/16"))
APART = topology(cluster("east", "10.101.0.0/16"), cluster("west", "10.102.0.0/16"))


def pod(cluster: str, ip: str) -> Endpoint:
    return Endpoint(cluster, f"probe-{ip}", ip)


def test_reason_names_both_clusters_and_the_range_in_topology_order() -> None:
    assert overlap_reason(between(OVERLAP, "c1", "c2")) == REASON
    assert between(OVERLAP, "c1", "c1") == [] and between(APART, "east", "west") == []
    found = between(OVERLAP, "c1", "c2")
    assert in_overlap("10.120.1.5", found) and not in_overlap("10.210.200.74", found)
    assert not in_overlap("echo.c2.svc.cluster.local", found)


def test_pod_ips_between_overlapping_clusters_are_left_out_ilbs_stay() -> None:
    a, b = pod("c1", "10.120.1.5"), pod("c2", "10.120.1.6")
    a2 = pod("c1", "10.120.2.5")
    ilb = load_balancer("c2", "c2/echo-ilb", "10.210.200.138")
    runner = RunnerVantage()
    scenario = Scenario({a: runner, b: runner}, [a, a2, b, ilb], [Probe("tcp", 8080)])
    kept = without_overlaps(scenario, OVERLAP).tasks()
    assert [t.destination for t in kept[a]] == [a2, ilb]  # not b, not itself
    assert [t.destination for t in kept[b]] == [ilb]
    assert without_overlaps(scenario, APART) is scenario


def test_empty_overlapping_pair_is_not_supported_once_worded() -> None:
    check = Check("x", "", lambda _env: Scenario({}, [], []))
    empty = Result(())
    assert check.unsupported_slice(empty, OVERLAP, "c1->c2") == REASON
    assert check.unsupported_slice(empty, OVERLAP, "c2->c1") == REASON
    assert check.unsupported_slice(empty, OVERLAP, "c1->c1") == ""
    assert check.unsupported_slice(empty, APART, "east->west") == ""
    assert check.unsupported_slice(empty, OVERLAP, "c1") == ""


def test_overlap_plan_is_seed_003() -> None:
    plan = layouts.plan("ncx", 3, "overlap")
    assert [r.name for r in plan.regions] == ["c1", "c2"] and plan.peerings == ()
    assert {r.vpc_cidr for r in plan.regions} == {"10.120.0.0/16"}
    assert {n.pod_cidr for r in plan.regions for n in r.nodes} == {
        "10.120.1.0/24",
        "10.120.2.0/24",
    }
    assert plan.shared is not None and plan.shared.cidr == "10.210.200.0/24"
    assert [r.ilb_cidr for r in plan.regions] == ["10.210.200.64/26", "10.210.200.128/26"]
    # the router forwards for its ILB slice in the shared network, outside its VPC
    assert "-d 10.210.200.64/26 -j ACCEPT" in router_filter(plan.regions[0])
    topo = lab_topology(plan, LabPaths(Path("/nonexistent")))
    assert [c.name for c in topo.clusters] == ["c1", "c2"]


def test_default_layout_unchanged_and_unknown_refused() -> None:
    plan = layouts.plan("ncx", 3)
    assert plan.shared is None and len(plan.peerings) == 3
    assert plan.region("east").ilb_cidr == "10.101.255.0/24"
    assert "10.101.255.0/24" not in router_filter(plan.region("east"))
    with pytest.raises(LabError, match="unknown lab layout 'flat'"):
        layouts.plan("ncx", 3, "flat")
