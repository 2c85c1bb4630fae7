"""Convergence does not spend its timeout again on a path this run found wholly down: the
pod-to-pod check (measured first) saw every probe east->west fail, so later checks' cases
across it are probed once, and say why they were not probed again."""

from __future__ import annotations

from collections.abc import Sequence

from netconform.command import CommandResult
from netconform.diagnosis import down_directions
from netconform.outcomes import ALLOW, TIMEOUT, Case, Endpoint, pod
from netconform.probes import Probe
from netconform.scenario import KNOWN_DOWN, Scenario, measure
from netconform.topology import ProbeSettings
from netconform.vantage import RunnerVantage

EAST = pod("east", "probe-0-0", "10.101.1.2")
CLOSED = pod("west", "probe-0-0", "127.0.0.1")  # loopback: nothing listens on port 1


class Counting(RunnerVantage):
    def __init__(self) -> None:
        super().__init__(name="counting", timeout=10)
        self.calls = 0

    def run(self, argv: Sequence[str], stdin: str | None = None) -> CommandResult:
        self.calls += 1
        return super().run(argv, stdin)


def failing_scenario(vantage: Counting) -> Scenario:
    settings = ProbeSettings(connect_timeout=0.5)
    return Scenario({EAST: vantage}, [CLOSED], [Probe("tcp", 1)], settings=settings)


def test_convergence_reprobes_a_failing_case_until_its_timeout() -> None:
    vantage = Counting()
    result = measure(failing_scenario(vantage), converge=1.0)
    assert result.failed and vantage.calls > 2


def test_a_known_down_direction_is_probed_once_and_says_so() -> None:
    vantage = Counting()
    token = KNOWN_DOWN.set(frozenset({("east", "west")}))
    try:
        result = measure(failing_scenario(vantage), converge=5.0)
    finally:
        KNOWN_DOWN.reset(token)
    assert vantage.calls == 1
    (case,) = result.failed
    assert "not probed again: this run found every probe east->west failing" in case.detail


def test_down_directions_need_every_pod_probe_failed() -> None:
    west = [pod("west", f"p{i}", f"10.102.1.{i}") for i in range(2)]
    cut = [Case(EAST, w, "tcp", 8080, ALLOW, TIMEOUT, "") for w in west]
    assert down_directions(cut) == {("east", "west")}
    one_through = [cut[0], Case(EAST, west[1], "tcp", 8080, ALLOW, ALLOW, "")]
    assert down_directions(one_through) == frozenset()
    deny: list[Case] = [Case(EAST, w, "tcp", 8080, TIMEOUT, TIMEOUT, "") for w in west]
    assert down_directions(deny) == frozenset()  # denies expected: no evidence of a path
    runner = Endpoint("", "runner", "", kind="runner")
    assert down_directions([Case(runner, west[0], "tcp", 80, ALLOW, TIMEOUT, "")]) == frozenset()
