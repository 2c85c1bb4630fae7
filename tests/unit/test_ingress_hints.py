"""The ingress, canary, TLS and DNS LoadBalancer hints fed the data that contradicts their
claim (issue 15): each must not make it, and must say what the data supports."""

from __future__ import annotations

from netconform.checks.canary import split_cause
from netconform.checks.dns import UNRELATED, NoAnswer, NotRecursive, lb_cause
from netconform.checks.ingress import INTERNAL, expected_answer, ingress_cause, internal_cause
from netconform.checks.tls import tls_cause
from netconform.ingress import Controller
from netconform.outcomes import (
    REFUSED,
    RUNNER,
    TIMEOUT,
    Answer,
    Case,
    Certificate,
    Endpoint,
    HttpStatus,
    Verdict,
    dns_name,
    ingress,
    plain,
)
from netconform.probes.tally import Tally
from netconform.split import CanaryWeight, SplitVerdict, Track
from netconform.tlsoutcomes import CertAspect
from netconform.topology import Cluster, ClusterName, Namespace, Region, Topology

ADDRESS = "198.18.1.80"
CONTROLLERS = {c: Controller(c, ADDRESS) for c in ("central", "east", "west")}
PODS = {"ing-foo": ("ing-foo-1", "ing-foo-2"), "ing-bar": ("ing-bar-1",), "ing-zero": ()}
PROBE = Endpoint("west", "probe-0-0", "10.102.1.10", "west-node-0")
TOPOLOGY = Topology(
    "t",
    tuple(Cluster(ClusterName(n), f"lab-{n}", Region(n), Namespace(n), (cidr,))
          for n, cidr in (("east", "10.101.0.0/16"), ("west", "10.102.0.0/16"))),
)  # fmt: skip


def route(path: str, answer: str | int, observed: object, src: Endpoint = RUNNER) -> Case:
    dst = ingress("east", "echo.example", path, ADDRESS)
    want = expected_answer(answer, "east", PODS)
    return Case(src, dst, "http", 80, want, observed, "")  # type: ignore[arg-type]


def ok(answer: str | int) -> HttpStatus:
    if isinstance(answer, str):
        return HttpStatus(Verdict.ALLOW, 200, body=PODS[answer][0])
    return HttpStatus(Verdict.ALLOW, answer)


ROUTES = (("/foo", "ing-foo"), ("/foo/bar", "ing-bar"), ("/foobar", 404), ("/zero", 503))


def test_ingress_hint_not_stale_where_routes_answer_as_written() -> None:
    """Contradicting data for "has not taken up the Ingress": its rules route /foo and
    /foo/bar to their backends; only /foobar is wrong (no ADDRESS in its status yet)."""
    cases = [route(p, a, ok(a) if p != "/foobar" else ok("ing-foo")) for p, a in ROUTES]
    hint = ingress_cause(cases, CONTROLLERS, TOPOLOGY, stale={"east"})
    assert "has not taken up" not in hint
    assert "east answers echo.example/foobar against the Ingress rules" in hint


def test_ingress_hint_names_the_path_where_one_source_hears_nothing() -> None:
    """Contradicting data for "the controller does not answer" and for "the rules": the
    runner gets every route right; west's pod gets nothing on any."""
    cases = [route(p, a, ok(a)) for p, a in ROUTES]
    cases += [route(p, a, TIMEOUT, PROBE) for p, a in ROUTES]
    hint = ingress_cause(cases, CONTROLLERS, TOPOLOGY, stale=set())
    assert "does not answer at" not in hint and "against the Ingress rules" not in hint
    assert (
        "answers runner but nothing from west/probe-0-0 (10.102.1.10): the path from there" in hint
    )


def test_ingress_hint_does_not_say_answers_where_a_route_is_silent() -> None:
    """Contradicting data for "answers X against the rules": /foo/bar timed out (no answer)."""
    cases = [route(p, a, ok(a) if p != "/foo/bar" else TIMEOUT) for p, a in ROUTES]
    hint = ingress_cause(cases, CONTROLLERS, TOPOLOGY, stale=set())
    assert "against the Ingress rules" not in hint


def internal_case(src: str, observed: object) -> Case:
    dst = Endpoint("east", "echo.example/foo", "10.120.0.200", kind=INTERNAL,
                   host="echo.example", path="/foo")  # fmt: skip
    probe = Endpoint(src, "probe-0-0", "10.120.1.10", f"{src}-node-0")
    want = expected_answer("ing-foo", "east", PODS)
    return Case(probe, dst, "http", 80, want, observed, "")  # type: ignore[arg-type]


def test_internal_hint_does_not_say_drops_where_it_answered_wrong() -> None:
    """Contradicting data for "the path drops it": west's pods got an answer, a 404."""
    cases = [internal_case("east", ok("ing-foo")), internal_case("west", ok(404))]
    hint = internal_cause(cases, TOPOLOGY)
    assert "drops" not in hint
    assert "answers west's pods, but not as the Ingress rules say" in hint


def test_internal_hint_does_not_compare_with_own_pods_it_has_no_word_from() -> None:
    """No case from east's own pods: "what east's own pods get answered" has no ground."""
    hint = internal_cause([internal_case("west", TIMEOUT)], TOPOLOGY)
    assert "own pods" not in hint
    assert "west's pods get no answer from east's internal LoadBalancer 10.120.0.200" in hint


# -- canary ------------------------------------------------------------------------------------

CANARY = ("canary-1",)
STABLE = ("stable-1", "stable-2")


def canary_dst(path: str = "/") -> Endpoint:
    return ingress("east", "canary.example", path, ADDRESS)


def weight(observed: SplitVerdict) -> Case:
    want = CanaryWeight(Verdict.ALLOW, 0.05, 0.0, 0.1, 0.05, CANARY)
    return Case(RUNNER, canary_dst(), "tally", 80, want, observed, "")


def override(observed: Tally, track: str = "canary") -> Case:
    want = Track(Verdict.ALLOW, track, CANARY if track == "canary" else STABLE)
    return Case(RUNNER, canary_dst(), "tally", 80, want, observed, "")


def test_canary_hint_says_unreachable_not_weight_when_no_backend_answered() -> None:
    """Contradicting data for "the weight is wrong": no request reached either backend."""
    none = SplitVerdict(Verdict.ALLOW, 0.0, 0.0, 1.0, "FAIL", 0, "FAIL: a round got no answer")
    silent = Tally(Verdict.ALLOW, (), (("timeout", 10),))
    hint = split_cause([weight(none), override(silent)], CONTROLLERS, stale=set())
    assert "says 5%" not in hint and "sends" not in hint
    assert "answers no request for the canary host from either backend (only timeout)" in hint
    assert "not the weight" in hint


def test_canary_hint_blames_errors_not_the_share_when_the_test_stopped_on_them() -> None:
    """Contradicting data: 60 answers counted, but the test stopped on failed requests."""
    why = "70 of 130 requests failed (HTTP 502 x70), more than 5%"
    stopped = SplitVerdict(Verdict.ALLOW, 0.0, 0.0, 0.06, "FAIL", 60, f"FAIL: {why}; ...", why)
    fine = Tally(Verdict.ALLOW, (("canary-1", 10),))
    hint = split_cause([weight(stopped), override(fine)], CONTROLLERS, stale=set())
    assert "but the controller sends" not in hint
    assert "stopped on failed requests, not on the share: 70 of 130 requests failed" in hint


def test_canary_hint_blames_the_share_when_the_share_failed() -> None:
    """A share outside its bounds (its verdict text starts `FAIL:` too) is the weight's story,
    not failed requests'."""
    text = "FAIL: canary share 40.0% (95% CI 34-46) expected 20% +-5 after 250 requests"
    skewed = SplitVerdict(Verdict.ALLOW, 0.4, 0.34, 0.46, "FAIL", 250, text)
    fine = Tally(Verdict.ALLOW, (("canary-1", 10),))
    hint = split_cause([weight(skewed), override(fine)], CONTROLLERS, stale=set())
    assert "stopped on failed requests" not in hint
    assert "says 5% but the controller sends 40.0% of requests to the canary" in hint


def test_canary_hint_not_stale_where_an_override_answers_as_written() -> None:
    """Contradicting data for "not taken up": `X-Canary: always` reached the canary."""
    skewed = SplitVerdict(Verdict.ALLOW, 0.3, 0.27, 0.35, "FAIL", 600, "FAIL: canary share ...")
    fine = Tally(Verdict.ALLOW, (("canary-1", 10),))
    hint = split_cause([weight(skewed), override(fine)], CONTROLLERS, stale={"east"})
    assert "has not taken up" not in hint
    assert "says 5% but the controller sends 30.0% of requests to the canary" in hint


# -- tls ---------------------------------------------------------------------------------------


def tls_case(protocol: str, port: int, expected: object, observed: object, path: str = "/") -> Case:
    dst = ingress("east", "secure.example", path, ADDRESS)
    return Case(RUNNER, dst, protocol, port, expected, observed, "")  # type: ignore[arg-type]


def test_tls_hint_does_not_speak_of_the_certificate_when_no_connection_opened() -> None:
    """Contradicting data for a certificate story: no handshake on 443 completes at all,
    while the plain HTTP redirect answers on 80."""
    redirect = HttpStatus(Verdict.ALLOW, 308, "https://secure.example/x")
    cases = [tls_case("http", 80, redirect, redirect, "/x")]
    cases += [tls_case("handshake", 443, CertAspect(Verdict.ALLOW, a, True, "ok"), REFUSED)
              for a in ("served", "chain", "san", "expiry")]  # fmt: skip
    cases += [tls_case("tls", 443, Certificate(Verdict.ALLOW, "CN = x"), plain(Verdict.TLS_ERROR))]
    hint = tls_cause(cases, CONTROLLERS)
    assert "certificate for" not in hint and "Secret" not in hint and "does not answer" not in hint
    assert f"no TLS connection to east's ingress controller at {ADDRESS}:443" in hint
    assert "not the certificate" in hint


def test_tls_hint_names_the_fake_certificate_when_one_was_served() -> None:
    redirect = HttpStatus(Verdict.ALLOW, 308, "https://secure.example/x")
    fake = CertAspect(Verdict.ALLOW, "served", False, "fake: Kubernetes Ingress Controller Fake")
    want = CertAspect(Verdict.ALLOW, "served", True, "ok")
    cases = [tls_case("http", 80, redirect, redirect, "/x"), tls_case("handshake", 443, want, fake)]
    hint = tls_cause(cases, CONTROLLERS)
    assert "no TLS connection" not in hint
    assert "east serves the controller's fake certificate for secure.example" in hint


# -- the DNS load balancers --------------------------------------------------------------------


def ask(src: Endpoint, name: str, expected: object, observed: object) -> Case:
    return Case(src, dns_name("west", name), "dns", 0, expected, observed, "")  # type: ignore[arg-type]


OWN = "echo.west.svc.cluster.local"
EAST = Endpoint("east", "probe-0-0", "10.101.1.10", "east-node-0")


def test_dns_lb_hint_says_exposed_not_down_when_the_world_gets_answers() -> None:
    """Contradicting data for "check its address and endpoints": it answers everyone, the
    world (runner) included, which an internal LB must not."""
    answer = Answer(Verdict.ALLOW, ("10.96.2.10",))
    cases = [ask(EAST, OWN, answer, answer), ask(RUNNER, OWN, NoAnswer(Verdict.TIMEOUT), answer)]
    hint = lb_cause(cases)
    assert "check its address" not in hint
    assert "answers the world (the runner)" in hint


def test_dns_lb_hint_says_open_resolver_not_down_when_it_recurses() -> None:
    answer = Answer(Verdict.ALLOW, ("93.184.216.34",))
    cases = [ask(EAST, UNRELATED, NotRecursive(Verdict.REFUSED), answer)]
    hint = lb_cause(cases)
    assert "check its address" not in hint and "path" not in hint
    assert f"resolves the unrelated name {UNRELATED}" in hint
