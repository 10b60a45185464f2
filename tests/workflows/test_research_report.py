"""Agentic workflows: orchestrator-workers, ResearchReport/generate with Researcher invocations."""

from typing import Any

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e

TOPIC = "The impact of renewable energy on global economies"


def workers(stack: Tour, report: str) -> list[dict[str, Any]]:
    return stack.admin.query(
        "SELECT id, target, status, created_at, completed_at FROM sys_invocation "
        f"WHERE invoked_by_id = '{report}' AND target_service_name = 'Researcher' ORDER BY created_at"
    )


def test_a_topic_is_planned_researched_by_workers_and_written_up(stack: Tour) -> None:
    resp = stack.call("ResearchReport/generate", {"topic": f"{TOPIC} (rr1)"})

    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["task_count"] == 3
    assert answer["report"].startswith(
        f"Report: {TOPIC} (rr1)\n\n1. Finding on 'What is known about the impact"
    )
    assert answer["report"].endswith("3 findings combined.")
    # Each task was an invocation of its own, all three started before the first answered.
    found = workers(stack, resp.headers["x-restate-id"])
    assert [w["target"] for w in found] == ["Researcher/run_researcher"] * 3
    assert max(w["created_at"] for w in found) < min(w["completed_at"] for w in found)


def test_the_default_topic_is_the_references(stack: Tour) -> None:
    resp = stack.call("ResearchReport/generate", {})

    assert resp.status_code == 200, resp.text
    assert resp.json()["report"].startswith(f"Report: {TOPIC}\n\n")


def test_a_worker_that_fails_for_good_ends_the_report_naming_its_task(stack: Tour) -> None:
    # The third task's LLM call is refused (HTTP 400): that worker fails for good.
    stack.llm.fault(
        "llm",
        count=1,
        status=400,
        containing="open questions about the impact of renewable energy on global economies (rr2)",
    )
    resp = stack.call("ResearchReport/generate", {"topic": f"{TOPIC} (rr2)"})

    assert resp.status_code == 400, resp.text
    message = resp.json()["message"]
    assert message.startswith("Research task 'What are the open questions about the impact of renewable")
    assert "failed: The LLM API refused the request (HTTP 400)" in message


@pytest.mark.crash
def test_a_crash_while_the_workers_work_repeats_neither_the_plan_nor_a_finding(stack: Tour) -> None:
    stack.llm.fault(
        "llm",
        count=1,
        hang=300,
        status=200,
        containing="figures describe the impact of renewable energy on global economies (rr3)",
    )
    invocation = stack.send("ResearchReport/generate", {"topic": f"{TOPIC} (rr3)"})
    wait_until(
        lambda: stack.llm_calls("figures describe the impact of renewable energy on global economies (rr3)"),
        what="the hanging worker",
    )
    # The other two workers are done (their findings journaled): an LLM call still on its way
    # back when the endpoint dies is asked again, and is not what this test is about.
    wait_until(
        lambda: [w["status"] for w in workers(stack, invocation)].count("completed") == 2,
        what="the other two workers",
    )

    stack.kill_endpoint()
    stack.restart_endpoint()

    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text
    assert resp.json()["task_count"] == 3
    answered = [c for c in stack.llm_calls("(rr3)") if c.get("status") == 200]
    # the plan, three findings, the report: each answered once
    assert len(answered) == 5
