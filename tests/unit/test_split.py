"""The canary split's rounds: answers counted per track, errors never counted and failing the
test only beyond the budget, a round without any answer failing it, the verdict naming both."""

from __future__ import annotations

from netconform import canary
from netconform.outcomes import TIMEOUT, Verdict
from netconform.probes.tally import Tally
from netconform.split import ERROR_BUDGET, Losses, record, summed, verdict_of

CANARY = ("canary-canary-a",)


def tally(stable: int, canaries: int, errors: int = 0) -> Tally:
    answers = tuple((p, n) for p, n in (("canary-stable-a", stable), (CANARY[0], canaries)) if n)
    return Tally(Verdict.ALLOW, answers, (("HTTP 503", errors),) if errors else ())


def test_answers_are_counted_per_track_and_errors_apart() -> None:
    state, losses = canary.CanaryPlan.build(0.2).state(), Losses()
    record(state, losses, tally(40, 9, errors=1), CANARY)
    assert (state.canary, state.stable, losses.total) == (9, 40, 1)
    assert state.decision == canary.Decision.CONTINUE  # one error in the first round: no verdict


def test_errors_beyond_the_budget_fail_with_their_reasons() -> None:
    state, losses = canary.CanaryPlan.build(0.2).state(), Losses()
    for _ in range(2):
        record(state, losses, tally(36, 9, errors=5), CANARY)
    assert losses.total / (state.requests + losses.total) > ERROR_BUDGET
    assert state.decision == canary.Decision.FAIL
    text = verdict_of(state, losses).text
    assert text.startswith("FAIL: 10 of 100 requests failed (HTTP 503 x10), more than 5%"), text
    assert "so far canary share 20.0%" in text


def test_a_round_without_any_answer_fails_it() -> None:
    state, losses = canary.CanaryPlan.build(0.05).state(), Losses()
    record(state, losses, TIMEOUT, CANARY)
    assert state.decision == canary.Decision.FAIL
    assert verdict_of(state, losses).text.startswith("FAIL: a round got no answer at all (TIMEOUT)")


def test_a_pass_names_what_was_not_counted() -> None:
    state, losses = canary.CanaryPlan.build(0.5, 0.25).state(), Losses()
    while state.decision == canary.Decision.CONTINUE:
        record(state, losses, tally(25, 24, errors=1), CANARY)
    assert state.decision == canary.Decision.PASS
    verdict = verdict_of(state, losses)
    assert verdict.decision == "PASS" and "request(s) not counted" in verdict.text
    assert "HTTP 503 x" in verdict.text and 0.4 < verdict.fraction < 0.6


def test_parts_of_a_round_are_summed_and_a_missing_part_is_the_failure() -> None:
    assert summed([tally(5, 1), tally(4, 0, errors=1)]) == Tally(
        Verdict.ALLOW, (("canary-canary-a", 1), ("canary-stable-a", 9)), (("HTTP 503", 1),)
    )
    assert summed([tally(5, 1), TIMEOUT]) == TIMEOUT
