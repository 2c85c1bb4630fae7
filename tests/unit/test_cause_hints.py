"""Every cause hint fed the data that contradicts its claim: it must not make the claim, and
must say what the data supports (issue 15). The ingress, canary, tls and DNS LB hints are in
test_ingress_hints.py; firewall, node, dns, pod and loss in their own modules."""

from __future__ import annotations

from netconform.checks.services import BLOCKED, REPLICAS, runner_cause
from netconform.checks.user_services import UserService, cause, no_endpoint
from netconform.cloudaudit import (
    PeeringView,
    Route,
    RouteTable,
    Rule,
    Snapshot,
    audit_port,
    audit_routes,
)
from netconform.outcomes import (
    ALLOW,
    REFUSED,
    RUNNER,
    TIMEOUT,
    Case,
    Endpoint,
    HttpStatus,
    Mtu,
    Verdict,
    load_balancer,
    service_ip,
)
from netconform.pathmtu import mtu_cause
from netconform.policycheck import finding
from netconform.policyhint import policy_cause
from netconform.probes.spread import Backends
from netconform.reachability import node_cause
from netconform.srcaddr import ClientAddress, source_cause

REGIONS = ("central", "east", "west")


def pod(region: str, i: int = 0, node: int = 0) -> Endpoint:
    n = REGIONS.index(region)
    return Endpoint(
        region, f"probe-{node}-{i}", f"10.{100 + n}.{1 + node}.{10 + i}", f"{region}-node-{node}"
    )


# -- mtu ---------------------------------------------------------------------------------------

WANT = Mtu(Verdict.ALLOW, 1500)


def mtu_case(src: str, dst: str, detail: str = "", size: int = 1500) -> Case:
    """A pair as `search_mtu` leaves it: the largest size that crossed, and its detail."""
    observed = TIMEOUT if "connection failure" in detail else Mtu(Verdict.ALLOW, size)
    return Case(pod(src), pod(dst, node=1), "mtu", 0, WANT, observed, detail)


def mtu_matrix(**broken: str) -> list[Case]:
    """Every region pair; `broken["east_west"]` is the detail search_mtu gave that pair."""
    cases = []
    for a in REGIONS:
        for b in REGIONS:
            detail = broken.get(f"{a}_{b}", "")
            size = 1400 if detail and "connection" not in detail else 1500
            cases.append(mtu_case(a, b, detail, size))
    return cases


HOLE = "MTU black hole east->west: 1401-byte packets vanish, no fragmentation-needed comes back"
NO_PATH = "no DF packet of 576 bytes crosses: a connection failure, not the MTU"


def test_mtu_hint_names_the_path_where_small_packets_fail_too() -> None:
    """Contradicting data for "a smaller MTU": on east->west not even 576 bytes cross."""
    hint = mtu_cause(mtu_matrix(east_west=NO_PATH, west_east=NO_PATH))
    assert "MTU" not in hint and "fragmentation" not in hint
    assert hint.startswith("only cross-region traffic fails (east<->west)")


def test_mtu_hint_names_the_hole_and_the_path_down_apart() -> None:
    """A black hole on east->west does not explain central->west, where nothing crosses."""
    hint = mtu_cause(mtu_matrix(east_west=HOLE, central_west=NO_PATH, west_central=NO_PATH))
    assert "MTU black hole east->west" in hint
    assert "only cross-region traffic fails (central<->west)" in hint
    assert "east<->west" not in hint  # east->west's packets do cross, up to 1400 bytes


def test_mtu_hint_never_calls_a_pmtud_path_down() -> None:
    """Contradicting data for "peering, routes or firewall drop it": 1400-byte packets cross
    and fragmentation-needed comes back."""
    small = "path MTU 1400: larger DF packets refused with fragmentation-needed"
    hint = mtu_cause(mtu_matrix(east_west=small))
    assert "drop" not in hint and "peering" not in hint
    assert "east->west path MTU 1400" in hint and "the path itself works" in hint


# -- source address ----------------------------------------------------------------------------


def client_case(src: Endpoint, dst: Endpoint, seen: str | None, detail: str = "") -> Case:
    observed = TIMEOUT if seen is None else ClientAddress(Verdict.ALLOW, seen)
    return Case(src, dst, "http", 8080, ClientAddress(Verdict.ALLOW, src.ip), observed, detail)


def test_source_hint_does_not_call_an_answering_echo_a_path_down() -> None:
    """Contradicting data for "the peering drops it": every echo answered, naming no address."""
    cases = [client_case(pod(a), pod(b, 1), "" if a != b else pod(a).ip)
             for a in REGIONS for b in REGIONS]  # fmt: skip
    hint = source_cause(cases)
    assert "drop" not in hint and "peering" not in hint and "source NAT" not in hint
    assert "without naming the client address" in hint and "the request got through" in hint


def test_source_hint_names_nat_and_the_silent_pair_apart() -> None:
    """NAT seen on east->west does not explain central->west, where no echo answered; the
    aws-node note of central (whose sources keep their address) is not named."""
    note = "aws-node DaemonSet [AWS_VPC_K8S_CNI_EXTERNALSNAT=false]"
    cases = [client_case(pod("east"), pod("west", 1), "10.101.0.10")]
    cases += [client_case(pod("central"), pod("west", 1), None, f"other-region; {note}")]
    cases += [client_case(pod("central"), pod("central", 1), pod("central").ip, note)]
    cases += [client_case(pod("west"), pod("west", 1), pod("west").ip)]
    hint = source_cause(cases)
    assert "source NAT on the path (east->west seen as CLIENT 10.101.0.10)" in hint
    assert "central<->west" in hint
    assert "aws-node" not in hint


# -- cluster-ip / services: the spread and the runner ------------------------------------------

ECHO_PODS = ("echo-a", "echo-b")


def spread_case(src: Endpoint, answered: tuple[str, ...]) -> Case:
    svc = service_ip(src.cluster, src.cluster, "echo", f"10.96.{REGIONS.index(src.cluster)}.10")
    want = Backends(Verdict.ALLOW, want=REPLICAS, names=ECHO_PODS)
    return Case(src, svc, "spread", 80, want, Backends(Verdict.ALLOW, pods=answered), "")


def test_spread_hint_names_the_pod_that_never_answers_not_kube_proxy() -> None:
    """Contradicting data for "kube-proxy on several nodes": the Service answers everywhere,
    from echo-a; echo-b answers from no node."""
    cases = [
        spread_case(pod(r, i, n), ("echo-a",)) for r in REGIONS for n in (0, 1) for i in (0, 1)
    ]
    hint = node_cause(cases)
    assert "kube-proxy or the pod network" not in hint and "starts on node" not in hint
    assert "never from echo-b, from any node" in hint


def test_spread_hint_names_the_node_where_one_pod_is_missed() -> None:
    """echo-b is missed from east-node-1 only: it answers through the Service elsewhere."""
    cases = [spread_case(pod("east", i, n), ("echo-a",) if n == 1 else ECHO_PODS)
             for n in (0, 1) for i in (0, 1)]  # fmt: skip
    hint = node_cause(cases)
    assert "east/east-node-1" in hint and "echo-b" in hint
    assert "which answer through it from east/east-node-0" in hint


def runner_case(lb: Endpoint, observed: object) -> Case:
    want = BLOCKED if lb.name.endswith("/echo-ilb") else Backends(Verdict.ALLOW, want=REPLICAS)
    return Case(RUNNER, lb, "spread", 80, want, observed, "")  # type: ignore[arg-type]


def test_runner_hint_is_no_story_of_regions_or_a_pods_route() -> None:
    """The runner is in no region: west's LB silent from it is not a cross-region cut."""
    west = load_balancer("west", "west/echo-lb", "198.18.2.11")
    east = load_balancer("east", "east/echo-lb", "198.18.1.11")
    cases = [runner_case(west, TIMEOUT), runner_case(east, Backends(Verdict.ALLOW, pods=ECHO_PODS))]
    hint = runner_cause(cases)
    assert "cross-region" not in hint and "route on node" not in hint and "east" not in hint
    assert "LoadBalancer west/west/echo-lb at 198.18.2.11 does not answer the runner" in hint


def test_runner_hint_says_an_internal_lb_answers_the_world() -> None:
    ilb = load_balancer("east", "east/echo-ilb", "10.101.0.200")
    hint = runner_cause([runner_case(ilb, HttpStatus(Verdict.ALLOW, 200))])
    assert "does not answer" not in hint
    assert "internal LoadBalancer east/east/echo-ilb at 10.101.0.200 answers the runner" in hint


# -- network policy ----------------------------------------------------------------------------


def test_policy_finding_does_not_call_a_refusal_a_drop() -> None:
    """Contradicting data for "unexpected drop": the pod answered with a reset."""
    line = finding(Case(pod("east"), pod("east", 1), "tcp", 8080, ALLOW, REFUSED, "policies"))
    assert "unexpected drop" not in line
    assert line.startswith("OUTAGE: unexpected refusal (the pod was reached")
    dropped = finding(Case(pod("east"), pod("east", 1), "tcp", 8080, ALLOW, TIMEOUT, "policies"))
    assert dropped.startswith("OUTAGE: unexpected drop")


def test_policy_hint_is_silent_where_unselected_pods_fail_too() -> None:
    """Contradicting data for "a policy drops it": east<->west fails between pods no policy
    selects as much as between selected ones (a cut peering, with a policy present)."""
    note = "other-region; NetworkPolicy east/east/deny[Ingress] selects the destination"
    cases = [
        Case(pod("west"), pod("east"), "icmp", 0, ALLOW, TIMEOUT, note),
        Case(pod("west"), pod("east", 1), "icmp", 0, ALLOW, TIMEOUT, "other-region"),
    ]
    assert policy_cause(cases) == ""
    assert "east/east/deny" in policy_cause(cases[:1])


# -- user services -----------------------------------------------------------------------------


def test_user_service_hint_does_not_call_an_answering_service_empty() -> None:
    """Contradicting data: the API listed no ready endpoint when read, but the Service's
    ClusterIP answered since; only the API's own fact case fails."""
    shop = UserService("east", "east", "shop", "ClusterIP", "10.96.1.50", (80,), "", 0, "app=shop")
    dst = service_ip("east", "east", "shop", "10.96.1.50")
    answered = [Case(pod("east"), dst, "tcp", 80, ALLOW, ALLOW, ""), no_endpoint(shop)]
    assert "no ready endpoint" not in cause(answered, [shop])
    refused = [Case(pod("east"), dst, "tcp", 80, ALLOW, REFUSED, ""), no_endpoint(shop)]
    assert "Service east/east/shop has no ready endpoint" in cause(refused, [shop])


# -- cloud preflight ---------------------------------------------------------------------------


def snapshot(routes: tuple[Route, ...] = (), rules: tuple[Rule, ...] = ()) -> Snapshot:
    peering = PeeringView("east", "west", "pcx-1", "peering pcx-1", "active", True)
    return Snapshot(
        "aws", (), peerings=(peering,),
        route_tables=(RouteTable("east", "route table rtb-1", routes),),
        rules=rules, rule_sources={"east": ("10.101.0.0/16",)},
        route_destinations={"west": ("10.102.0.0/16",)},
    )  # fmt: skip


def test_route_audit_does_not_call_a_default_route_the_peers_route() -> None:
    """Contradicting data for "routes it to igw-1": only the default route covers the peer."""
    found = audit_routes(snapshot((Route("0.0.0.0/0", "igw-1"),)), "east", "west")
    assert [f.message for f in found] == [
        "aws east->west: route table rtb-1 has no route to 10.102.0.0/16 (peer west)"
    ] or all("has no route to 10.102.0.0/16" in f.message for f in found)
    assert not any("igw-1" in f.message for f in found)


def test_route_audit_judges_the_most_specific_route_only() -> None:
    """A broad blackhole route is shadowed by the peer's own active route through pcx-1."""
    routes = (Route("10.0.0.0/8", "pcx-0", active=False), Route("10.102.0.0/16", "pcx-1"))
    assert audit_routes(snapshot(routes), "east", "west") == []


def test_port_audit_honours_the_first_matching_rule() -> None:
    """Contradicting data for "denies": an allow of higher precedence comes first."""
    allow = Rule("west", "allow-peers", ("10.101.0.0/16",), priority=100)
    deny = Rule("west", "deny-all", ("0.0.0.0/0",), allow=False, priority=200)
    assert audit_port(snapshot(rules=(allow, deny)), "east", "west", 9092) == []
    first = Rule("west", "deny-all", ("0.0.0.0/0",), allow=False, priority=50)
    found = audit_port(snapshot(rules=(allow, first)), "east", "west", 9092)
    assert found and "denies (rule deny-all, priority 50) tcp/9092" in found[0].message
