"""The run's one diagnosis: each explanation is named when its data says so, and never when a
case of its own scope contradicts it (a pass where it claims everything fails)."""

from __future__ import annotations

from collections.abc import Iterable

from netconform.diagnosis import Diagnosis, diagnose
from netconform.firewall import CLOSED
from netconform.outcomes import (
    ALLOW,
    REFUSED,
    TIMEOUT,
    Answer,
    Case,
    Endpoint,
    Outcome,
    PingStats,
    Verdict,
    dns_name,
    load_balancer,
    node_port,
    plain,
    pod,
    service_ip,
)
from netconform.topology import Cluster, ClusterName, Namespace, Region, Topology

REGIONS = {"central": 100, "east": 101, "west": 102}


def region(name: str, b: int) -> Cluster:
    pods, services = (f"10.{b}.0.0/16",), (f"10.{b + 100}.0.0/16",)
    return Cluster(ClusterName(name), f"lab-{name}", Region(name), Namespace(name), pods, services)


TOPOLOGY = Topology("t", tuple(region(n, b) for n, b in REGIONS.items()))


def probe_pod(cluster: str, node: int, n: int) -> Endpoint:
    b = REGIONS[cluster]
    return pod(cluster, f"probe-{node}-{n}", f"10.{b}.{node + 1}.{n + 2}", f"{cluster}-node-{node}")


PODS = {c: [probe_pod(c, node, n) for node in (0, 1) for n in (0, 1)] for c in REGIONS}
ALL_PODS = [p for pods in PODS.values() for p in pods]


def case(src: Endpoint, dst: Endpoint, protocol: str, port: int, expected: Outcome,
         observed: Outcome, detail: str = "") -> Case:  # fmt: skip
    return Case(src, dst, protocol, port, expected, observed, detail or str(observed))


def pod_to_pod(broken: set[tuple[str, str]] = frozenset()) -> list[Case]:  # type: ignore[assignment]
    """icmp and tcp/8080 between every two probe pods; `broken` (src, dst) cluster pairs time
    out."""
    found = []
    for src in ALL_PODS:
        for dst in ALL_PODS:
            if src == dst:
                continue
            seen = TIMEOUT if (src.cluster, dst.cluster) in broken else ALLOW
            found.append(case(src, dst, "icmp", 0, ALLOW, seen))
            found.append(case(src, dst, "tcp", 8080, ALLOW, seen))
    return found


def dns_lookups(failing: set[tuple[str, str]] = frozenset()) -> list[Case]:  # type: ignore[assignment]
    """Each cluster's first pod asks its own DNS (server in its Service range) for every
    zone; `failing` (asking cluster, zone's cluster) pairs time out."""
    found = []
    for src_cluster, pods in PODS.items():
        server = f"10.{REGIONS[src_cluster] + 100}.0.10"
        for zone in REGIONS:
            dst = dns_name(zone, f"echo.{zone}.svc.cluster.local")
            bad = (src_cluster, zone) in failing
            seen = TIMEOUT if bad else Answer(Verdict.ALLOW, ("10.1.1.1",))
            detail = f"no answer (server {server})" if bad else f"1 A record (server {server})"
            found.append(case(pods[0], dst, "dns", 0, Answer(Verdict.ALLOW, ("10.1.1.1",)), seen,
                              detail))  # fmt: skip
    return found


def run(**checks: Iterable[Case]) -> Diagnosis:
    return diagnose({k.replace("_", "-"): list(v) for k, v in checks.items()}, TOPOLOGY)


def places(found: Diagnosis) -> list[tuple[str, str]]:
    return [(f.component, f.place) for f in found.findings]


def test_a_healthy_run_has_nothing_to_explain() -> None:
    found = run(pod_to_pod=pod_to_pod(), dns=dns_lookups())
    assert found.findings == () and found.lines() == ["no failure to explain"]


def test_a_cut_path_is_one_story_across_checks() -> None:
    cut = {("east", "west"), ("west", "east")}
    found = run(pod_to_pod=pod_to_pod(cut), dns=dns_lookups(cut))
    assert places(found) == [("path", "east<->west")]
    (only,) = found.findings
    assert only.summary.startswith("east<->west path down: every probe kind fails across it")
    assert only.summary.endswith("nothing else fails")
    assert only.checks == {"pod-to-pod": 64, "dns": 2}


def test_one_pass_across_the_pair_rules_the_path_out() -> None:
    """Contradicting data: one tcp connect east->west passed. No path claim; the failures of
    that direction are then a port's (tcp/8080 fails except that one? no: it passed, so not
    the port either): icmp alone fails, which no candidate claims wholesale."""
    cases = pod_to_pod({("east", "west")})
    lucky = next(c for c in cases if (c.source.cluster, c.destination.cluster, c.protocol)
                 == ("east", "west", "tcp"))  # fmt: skip
    cases[cases.index(lucky)] = case(lucky.source, lucky.destination, "tcp", 8080, ALLOW, ALLOW)
    found = run(pod_to_pod=cases)
    assert ("path", "east->west") not in places(found)
    assert all(f.component != "path" for f in found.findings)


def test_a_deny_expectation_that_times_out_is_no_evidence_of_a_path() -> None:
    """Closed ports and policy denies pass by timing out: they neither prove the path up nor
    count against a cut."""
    cut = {("east", "west"), ("west", "east")}
    closed = [case(s, d, "tcp", 22, CLOSED, TIMEOUT) for s in PODS["east"] for d in PODS["west"]]
    found = run(pod_to_pod=pod_to_pod(cut), firewall=closed)
    assert places(found) == [("path", "east<->west")]


def test_a_blocked_port_names_the_port_when_other_ports_connect() -> None:
    east, west = PODS["east"], PODS["west"]
    rules = [case(s, d, "tcp", p, ALLOW, TIMEOUT if p == 9092 else ALLOW)
             for s in east for d in west for p in (2181, 9092)]  # fmt: skip
    found = run(pod_to_pod=pod_to_pod(), firewall=rules)
    assert places(found) == [("port", "east->west tcp/9092")]
    assert "other ports between these regions connect" in found.findings[0].summary


def test_a_port_that_connects_once_is_not_blocked() -> None:
    east, west = PODS["east"], PODS["west"]
    rules = [case(s, d, "tcp", 9092, ALLOW, TIMEOUT) for s in east for d in west]
    rules[0] = case(east[0], west[0], "tcp", 9092, ALLOW, ALLOW)
    found = run(pod_to_pod=pod_to_pod(), firewall=rules)
    assert all(f.component != "port" for f in found.findings)


def lb_cases(observed: dict[str, Outcome]) -> list[Case]:
    """Every probe pod to west's echo LoadBalancer; `observed` by source cluster."""
    lb = load_balancer("west", "west/echo-lb", "198.18.2.11")
    return [case(p, lb, "http", 80, ALLOW, observed[p.cluster]) for p in ALL_PODS]


def test_a_service_that_refuses_every_source_has_no_ready_endpoint() -> None:
    """Refused from everywhere: not the peering, not the firewall (they would be silent)."""
    found = run(pod_to_pod=pod_to_pod(), services=lb_cases(dict.fromkeys(REGIONS, REFUSED)))
    assert places(found) == [("service", "west/west/echo-lb")]
    summary = found.findings[0].summary
    assert "no ready endpoint" in summary and "peering" not in summary


def test_a_service_answering_one_source_is_not_without_endpoints() -> None:
    seen = {"central": ALLOW, "east": REFUSED, "west": REFUSED}
    found = run(pod_to_pod=pod_to_pod(), services=lb_cases(seen))
    assert all(f.component != "service" for f in found.findings)


def test_a_silent_load_balancer_from_every_source_is_the_load_balancer() -> None:
    found = run(pod_to_pod=pod_to_pod(), services=lb_cases(dict.fromkeys(REGIONS, TIMEOUT)))
    assert places(found) == [("loadbalancer", "west/west/echo-lb (198.18.2.11)")]


def nodeports(closed_node: str) -> list[Case]:
    found = []
    for src in ALL_PODS:
        for n in (0, 1):
            node = f"west-node-{n}"
            dst = node_port("west", "west/echo-nodeport", node, f"10.102.0.{10 + n}")
            found.append(case(src, dst, "http", 30004, ALLOW,
                              TIMEOUT if node == closed_node else ALLOW))  # fmt: skip
    return found


def test_nodeports_closed_on_one_node_name_that_node() -> None:
    found = run(pod_to_pod=pod_to_pod(), services=nodeports("west-node-1"))
    assert places(found) == [("nodeport", "west/west-node-1")]


def test_a_node_whose_pods_all_fail_is_named_before_its_pods() -> None:
    cases = [c if c.destination.node != "west-node-1" else
             case(c.source, c.destination, c.protocol, c.port, ALLOW, TIMEOUT)
             for c in pod_to_pod()]  # fmt: skip
    found = run(pod_to_pod=cases)
    assert places(found) == [("node", "west/west-node-1")]
    # contradicting: one pod of that node still answers -> the node is not claimed
    cases = [c if c.destination.name != "probe-1-0" or c.destination.cluster != "west" else
             case(c.source, c.destination, c.protocol, c.port, ALLOW, TIMEOUT)
             for c in pod_to_pod()]  # fmt: skip
    found = run(pod_to_pod=cases)
    assert places(found) == [("pod", "west/probe-1-0")]


def test_a_cluster_dns_that_answers_nothing_is_its_dns() -> None:
    failing = {("west", z) for z in REGIONS} | {("central", "west"), ("east", "west")}
    found = run(pod_to_pod=pod_to_pod(), dns=dns_lookups(failing))
    assert places(found) == [("dns", "west")]
    assert "west's DNS down" in found.findings[0].summary


def test_a_zone_unresolvable_from_elsewhere_only_is_its_dns_load_balancer() -> None:
    found = run(pod_to_pod=pod_to_pod(), dns=dns_lookups({("central", "west"), ("east", "west")}))
    assert places(found) == [("dns", "west")]
    summary = found.findings[0].summary
    assert "cannot be resolved from other clusters" in summary and "DNS pods" not in summary


def test_a_zone_one_cluster_resolves_is_not_blamed_on_its_dns() -> None:
    """Contradicting data: central resolves west's zone, east does not. Not west's DNS."""
    found = run(pod_to_pod=pod_to_pod(), dns=dns_lookups({("east", "west")}))
    assert all(f.component != "dns" for f in found.findings)


def lossy_pings() -> list[Case]:
    found = []
    for src in PODS["east"]:
        for dst in PODS["west"]:
            lost = PingStats(3, 1, 66.7)
            found.append(Case(src, dst, "icmp", 0, ALLOW, plain(Verdict.LOSS), "1/3", lost))
            found.append(case(src, dst, "tcp", 8080, ALLOW, ALLOW))
    return found


def test_loss_on_a_link_covers_the_odd_timeout_on_the_same_path() -> None:
    east, west = PODS["east"], PODS["west"]
    odd = [case(east[0], west[1], "http", 8080, ALLOW, TIMEOUT)]
    found = run(pod_to_pod=lossy_pings(), source_address=odd)
    assert places(found) == [("loss", "east->west")]
    assert "32 of 48 pings lost (67%)" in found.findings[0].summary
    assert found.findings[0].checks == {"pod-to-pod": 16, "source-address": 1}


def test_what_no_candidate_explains_is_said_per_check() -> None:
    east, west = PODS["east"], PODS["west"]
    cases = pod_to_pod()
    odd = case(east[0], west[0], "tcp", 8080, ALLOW, TIMEOUT)
    found = run(pod_to_pod=cases, mtu=[odd, case(east[1], west[1], "mtu", 0, ALLOW, ALLOW)])
    assert ("unexplained", "mtu") in places(found)
    assert found.covering([odd]) == []


def test_service_cluster_ip_refused_everywhere_is_one_finding_per_service() -> None:
    svc = service_ip("west", "west", "echo", "10.202.0.4")
    refused = [case(p, svc, "tcp", 80, ALLOW, REFUSED) for p in PODS["west"]]
    found = run(pod_to_pod=pod_to_pod(), cluster_ip=refused)
    assert places(found) == [("service", "west/west/echo")]
