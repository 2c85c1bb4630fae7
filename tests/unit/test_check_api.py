"""The check API's composition rules: convergence needs N consecutive good rounds (a lucky
retry is not enough), a check's refine judges every round, a check declares its
parametrization key from the documented set, outcomes can match a body, and a setup or
requirement that failed is remembered."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from fixtures.checks import remembered
from netconform.check import PARAMETERS, Check
from netconform.errors import NetconformError, WaitTimeoutError
from netconform.outcomes import ALLOW, REFUSED, Endpoint, HttpStatus, Outcome, Verdict, pod
from netconform.probes import Probe
from netconform.result import Result
from netconform.scenario import Oracle, Scenario, measure
from netconform.topology import ProbeSettings
from netconform.vantage import RunnerVantage

RUNNER_POD = pod("east", "probe-0-0", "127.0.0.1")


@pytest.fixture
def listener() -> Iterator[int]:
    """A real TCP listener on loopback that accepts every connect."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(2)
    server.close()


def flapping(expectations: list[Outcome]) -> tuple[Oracle, list[int]]:
    """An oracle whose expectation of the one case changes per round: the probe always
    connects, so an expected REFUSED fails that round and an expected ALLOW passes it."""
    rounds = [0]

    def oracle(_src: Endpoint, _dst: Endpoint, _probe: Probe) -> Outcome:
        rounds[0] += 1
        return expectations[min(rounds[0], len(expectations)) - 1]

    return oracle, rounds


def scenario(port: int, rounds: int = 2) -> Scenario:
    dst = pod("east", "listener", "127.0.0.1")
    settings = replace(ProbeSettings(connect_timeout=1), converge_rounds=rounds)
    return Scenario({RUNNER_POD: RunnerVantage()}, [dst], [Probe("tcp", port)], settings=settings)


def test_one_lucky_pass_is_not_convergence(listener: int) -> None:
    oracle, rounds = flapping([REFUSED, ALLOW, REFUSED, ALLOW, ALLOW])
    result = measure(scenario(listener), oracle, converge=10)
    assert not result.failed and rounds[0] == 5  # fail, pass, fail, then two passes in a row
    (case,) = result.cases  # a pass after failures says so, never a clean pass
    assert case.detail.endswith("; passed after 2 failed round(s)")
    oracle, rounds = flapping([REFUSED, ALLOW, REFUSED, ALLOW, ALLOW])
    assert not measure(scenario(listener, rounds=1), oracle, converge=10).failed
    assert rounds[0] == 2  # N=1: the first pass would have done


def test_a_case_failing_every_other_round_fails_by_its_last_failure(listener: int) -> None:
    oracle, rounds = flapping([REFUSED, ALLOW] * 200)
    result = measure(scenario(listener), oracle, converge=1.5)
    assert rounds[0] > 3 and [c.expected for c in result.failed] == [REFUSED]
    oracle, rounds = flapping([ALLOW])
    assert not measure(scenario(listener), oracle, converge=10).failed
    assert rounds[0] == 1  # nothing failed: no re-probing at all


def test_refine_judges_every_round_before_convergence(listener: int) -> None:
    judged: list[int] = []

    def judge(whole: Result) -> Result:
        judged.append(len(whole.cases))
        if len(judged) > 1:
            return whole
        # the first round's judgement fails what the probe passed (as loss per pair can)
        return replace(whole, cases=tuple(replace(c, expected=REFUSED) for c in whole.cases))

    oracle, _ = flapping([ALLOW])
    result = measure(scenario(listener), oracle, 10, judge)
    assert not result.failed and judged == [1, 1, 1]  # failed by the judge, then twice good


def test_a_check_declares_its_parametrization_key_from_the_documented_set() -> None:
    assert {"region", "region_pair", "peer_pair", "region_port"} <= set(PARAMETERS)
    check = Check("lb-http", "", lambda _env: scenario(1), param="peer_pair")
    assert check.wrong_param(["peer_pair"]) == ""
    wrong = check.wrong_param(["region_pair"])
    assert "parametrized by peer_pair" in wrong and "name the test's parameter" in wrong
    assert Check("any", "", lambda _env: scenario(1)).wrong_param(["route"]) == ""
    with pytest.raises(NetconformError, match="param 'pairs': one of region, region_pair"):
        Check("typo", "", lambda _env: scenario(1), param="pairs")


def test_an_expected_body_is_matched() -> None:
    answered = HttpStatus(Verdict.ALLOW, 200, body='{"pod": "echo-1", "region": "west"}')
    assert HttpStatus(Verdict.ALLOW, 200, body='"pod": "echo-1"').satisfied_by(answered)
    assert not HttpStatus(Verdict.ALLOW, 200, body='"pod": "echo-2"').satisfied_by(answered)
    assert HttpStatus(Verdict.ALLOW, 200).satisfied_by(answered)  # no body: any body
    assert str(answered) == "HTTP 200 from echo-1"  # a wrong backend names the pod seen


def test_a_setup_that_timed_out_is_remembered() -> None:
    cache: dict[str, object] = {}
    calls = []

    def once(key: str, compute: object) -> object:
        if key not in cache:
            cache[key] = compute()  # type: ignore[operator]
        return cache[key]

    def wait() -> str:
        calls.append(1)
        raise WaitTimeoutError("load_balancer: not reached within 60s")

    for _ in range(3):
        with pytest.raises(WaitTimeoutError, match="not reached within 60s"):
            remembered(once, "x", wait)  # type: ignore[arg-type]
    assert calls == [1]
