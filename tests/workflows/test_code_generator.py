"""Agentic workflows: evaluator-optimizer, CodeGenerator/generate (at most 3 rounds)."""

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e

TASK = "Write a function that checks if a string is a palindrome"


def test_the_review_of_round_1_makes_round_2_pass(stack: Tour) -> None:
    resp = stack.call("CodeGenerator/generate", {"task": f"{TASK} (cg1)"})

    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["iterations"] == 2 and answer["passed"] is True
    assert "letters = [c.lower() for c in s if c.isalnum()]" in answer["code"]
    assert stack.run_steps(resp.headers["x-restate-id"]) == ["call LLM"] * 4


def test_the_default_task_is_the_references(stack: Tour) -> None:
    resp = stack.call("CodeGenerator/generate", {})

    assert resp.status_code == 200, resp.text
    assert resp.json()["iterations"] == 2


def test_a_reviewer_that_never_passes_stops_after_three_rounds(stack: Tour) -> None:
    # Every review fails the code (the stand-in misbehaving: a review that is not PASS).
    stack.llm.fault("llm", count=3, misbehave="long_answer", length=50, containing="Code:\ndef is_palindrome")
    resp = stack.call("CodeGenerator/generate", {"task": f"{TASK} (cg2)"})

    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["iterations"] == 3 and answer["passed"] is False and answer["feedback"]
    assert len(stack.run_steps(resp.headers["x-restate-id"])) == 6


@pytest.mark.crash
def test_a_crash_in_round_2_resumes_in_round_2(stack: Tour) -> None:
    # Round 2's review hangs: the improved code has a docstring that the first attempt has not.
    stack.llm.fault("llm", count=1, hang=300, status=200, containing="ignoring case, spaces and punctuation")
    invocation = stack.send("CodeGenerator/generate", {"task": f"{TASK} (cg3)"})
    wait_until(lambda: len(stack.llm_calls("(cg3)")) == 4, what="round 2's review")

    stack.kill_endpoint()
    stack.restart_endpoint()

    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text
    assert resp.json()["iterations"] == 2
    # code, review, code, review: each answered once (the hung review was asked again)
    assert len([c for c in stack.llm_calls("(cg3)") if c.get("status") == 200]) == 4
