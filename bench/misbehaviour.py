"""LLM calls spent per misbehaving invocation before it ends: every model-calling service under
each model misbehaviour, with the endpoint's default settings (AGENT_MAX_TURNS=10,
LLM_MAX_ATTEMPTS=5). The figure `max_llm_calls` is the worst over the matrix.

    python -m bench --only misbehaviour

The services of one misbehaviour are called at the same time: most of an invocation's time is
spent waiting for a retry, not computing. Each LLM call is attributed to its invocation by the
marker in the request's last user message; if that misses any call the stand-in counted, the
misbehaviour is measured again one invocation at a time.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dev.harness import Tour
from dev.offline_llm.answers import MISBEHAVIOURS
from tests.runtime.misbehaviour_cases import CASES, approving_reviews, call


def one_at_a_time(stack: Tour, behaviour: str) -> tuple[dict[str, int], dict[str, int]]:
    calls, status = {}, {}
    for case in CASES:
        stack.llm.reset()
        stack.llm.fault("llm", count=100_000, misbehave=behaviour)
        resp, _ = call(stack, case)
        calls[case.path] = stack.llm.stats()["llm_calls"]
        status[case.path] = resp.status_code
    return calls, status


def all_at_once(stack: Tour, behaviour: str) -> tuple[dict[str, int], dict[str, int]] | None:
    """The matrix row at once; None if some LLM call could not be told apart."""
    stack.llm.reset()
    stack.llm.fault("llm", count=100_000, misbehave=behaviour)
    with ThreadPoolExecutor(len(CASES)) as pool:
        answers = list(pool.map(lambda case: call(stack, case), CASES))
    stats = stack.llm.stats()
    markers = {case.path: marker for case, (_, marker) in zip(CASES, answers, strict=True)}
    llm_calls = [c for c in stats["calls"] if c["api"] in ("responses", "chat")]
    calls = {
        path: sum(1 for c in llm_calls if f"({marker})" in c.get("input", ""))
        for path, marker in markers.items()
    }
    if sum(calls.values()) != stats["llm_calls"] or len(llm_calls) != stats["llm_calls"]:
        return None
    return calls, {case.path: resp.status_code for case, (resp, _) in zip(CASES, answers, strict=True)}


def measure(stack: Tour, quick: bool) -> dict[str, Any]:
    behaviours = ["unknown_tool", "empty"] if quick else list(MISBEHAVIOURS)
    calls: dict[str, dict[str, int]] = {}
    outcome: dict[str, dict[str, int]] = {}
    sequential: list[str] = []
    with approving_reviews(stack):
        for behaviour in behaviours:
            row = all_at_once(stack, behaviour)
            if row is None:
                sequential.append(behaviour)
                row = one_at_a_time(stack, behaviour)
            calls[behaviour], outcome[behaviour] = row
    stack.llm.reset()
    worst = max((n, b, p) for b, by_path in calls.items() for p, n in by_path.items())
    return {
        "max_llm_calls": worst[0],
        "max_llm_calls_at": f"{worst[2]} under {worst[1]}",
        "llm_calls": calls,
        "http_status": outcome,
        "measured_one_at_a_time": sequential,
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
