"""Model-calling services of the tour, and how to call each: for the misbehaviour matrix
(tests/runtime/test_misbehaviour.py) and the bench's LLM calls per misbehaving invocation."""

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from dev.harness import Tour, run_curl

_markers = itertools.count(1)


def claim(marker: str) -> dict[str, Any]:
    return {
        "date": "2024-10-01",
        "amount": 3000,
        "category": "orthopedic",
        "placeOfService": "General Hospital",
        "reason": f"hospital bill for a broken leg ({marker})",
    }


def small_claim(marker: str) -> dict[str, Any]:
    return {"message": f"Process my hospital bill of 500USD for a broken leg ({marker})."}


def weather(marker: str) -> dict[str, Any]:
    return {"message": f"What is the weather like in San Francisco? ({marker})"}


@dataclass(frozen=True)
class Case:
    path: str  # `{key}` is replaced by a fresh object key
    body: Callable[[str], dict[str, Any]]
    agent_runs: int = 1  # agent runs per invocation, each bounded by MAX_TURNS
    graceful: bool = False  # answers 200 "The agent couldn't complete the request: <error>"
    chat_api: bool = False  # the manual loop: chat completions instead of the Agents SDK


CASES = [
    Case("WeatherAgent/run", weather),
    Case("ErrorHandlingAgent/run", weather, graceful=True),
    Case("ErrorHandlingAgent/run_with_explanations", weather, graceful=True),
    Case("StreamingAgent/run", weather),
    Case("ManualLoopAgent/run", weather, chat_api=True),
    Case("HumanClaimApprovalAgent/run", small_claim),
    Case("HumanClaimApprovalWithTimeoutsAgent/run", small_claim),
    Case("SubWorkflowClaimApprovalAgent/run", small_claim),
    Case("Chat/{key}/message", lambda m: {"message": f"My name is Alice ({m})."}),
    Case("MultiAgentClaimApproval/{key}/run", claim),
    Case("RemoteMultiAgentClaimApproval/run", claim, agent_runs=3),
    Case("ParallelToolClaimAgent/run", claim),
    Case("ParallelAgentClaimApproval/run", claim, agent_runs=4),
    Case("ParallelAgentClaimApproval/race", claim, agent_runs=2),
    Case("EligibilityAgent/run", claim),
    Case("FraudAgent/run", claim),
    Case("RateComparisonAgent/run", claim),
    Case("BookingWithRollbackAgent/book", lambda m: {"message": f"Book a trip to Seattle ({m})."}),
    Case("InterruptibleAgent/{key}/run", lambda m: {"message": f"Write a short report ({m})."}),
    # input guardrail agent, claim agent, output guardrail agent
    Case("GuardedClaimAgent/run", small_claim, agent_runs=3),
    Case("McpClaimAgent/run", claim),
    # the SDK's tool approvals: a person approves whatever the model asks to pay (approving_reviews)
    Case("ToolApprovalClaimAgent/run", small_claim),
    Case("McpClaimAgent/pay", claim),
    # the agentic workflows (app/workflows/): each agent run is bounded, and so are the runs
    Case("ClaimReimbursement/process", small_claim, agent_runs=2),  # parse, analyse
    Case(
        "ResearchReport/generate", lambda m: {"topic": f"Solar power ({m})"}, agent_runs=6
    ),  # plan, <= 4 tasks, report
    Case("Researcher/run_researcher", lambda m: {"question": f"How cheap is solar power ({m})?"}),
    Case(
        "CodeGenerator/generate", lambda m: {"task": f"Write a palindrome check ({m})"}, agent_runs=6
    ),  # 3 rounds
    Case("AsyncNotificationsAgent/{key}/run", lambda m: {"message": f"Write a poem about retries ({m})."}),
]


def call(stack: Tour, case: Case) -> tuple[httpx.Response, str]:
    marker = f"misbehaviour-{next(_markers)}"
    path = case.path.replace("{key}", marker)
    return stack.http.post(f"/{path}", json=case.body(marker), timeout=120), marker


@contextlib.contextmanager
def approving_reviews(stack: Tour) -> Iterator[None]:
    """Approves every human review requested meanwhile, so a looping approval tool cannot wait forever."""
    done = threading.Event()
    # A looping model fills in the claim itself: its review requests need not carry a marker.
    # Earlier requests are left alone.
    handled = len(stack.review_requests(""))

    def approve() -> None:
        nonlocal handled
        while not done.wait(0.3):
            for approve_command, _ in stack.review_requests("")[handled:]:
                handled += 1
                run_curl(approve_command, timeout=30)

    thread = threading.Thread(target=approve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
