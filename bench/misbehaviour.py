"""LLM calls spent per misbehaving invocation before it ends: every model-calling service under
each model misbehaviour, one invocation at a time, with the endpoint's default settings
(AGENT_MAX_TURNS=10, LLM_MAX_ATTEMPTS=5). The figure `max_llm_calls` is the worst over the matrix.

    python -m bench --only misbehaviour
"""

from typing import Any

from dev.harness import Tour
from dev.misbehaviour import CASES, approving_reviews, call
from dev.offline_llm.answers import MISBEHAVIOURS


def measure(stack: Tour, quick: bool) -> dict[str, Any]:
    behaviours = ["unknown_tool", "endless_tools", "empty"] if quick else list(MISBEHAVIOURS)
    calls: dict[str, dict[str, int]] = {}
    outcome: dict[str, dict[str, int]] = {}
    with approving_reviews(stack):
        for behaviour in behaviours:
            for case in CASES:
                stack.llm.reset()
                stack.llm.fault("llm", count=100_000, misbehave=behaviour)
                resp, _ = call(stack, case)
                calls.setdefault(behaviour, {})[case.path] = stack.llm.stats()["llm_calls"]
                outcome.setdefault(behaviour, {})[case.path] = resp.status_code
    stack.llm.reset()
    worst = max((n, b, p) for b, by_path in calls.items() for p, n in by_path.items())
    return {
        "max_llm_calls": worst[0],
        "max_llm_calls_at": f"{worst[2]} under {worst[1]}",
        "llm_calls": calls,
        "http_status": outcome,
    }


def report(figures: dict[str, Any]) -> None:
    print(
        f"LLM calls per misbehaving invocation: at most {figures['max_llm_calls']} ({figures['max_llm_calls_at']})"
    )
    for behaviour, by_path in figures["llm_calls"].items():
        worst = max(by_path.values())
        print(
            f"  {behaviour:14} max {worst:3}  "
            + ", ".join(f"{p.split('/')[0]} {n}" for p, n in by_path.items() if n == worst)
        )
