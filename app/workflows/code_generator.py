"""Evaluator-optimizer: generate code, have it reviewed, retry with the review, at most 3 rounds.

`CodeGenerator/generate` loops: the generator writes code for the task (with the last review's
feedback, after the first round), the evaluator answers `PASS` or `FAIL: <feedback>`. The loop is
bounded (MAX_ROUNDS) and durable: every LLM call is journaled, so a crash in round 2 resumes in
round 2, with round 1's code and feedback from the journal.

    curl localhost:8080/CodeGenerator/generate --json '{"task": "Write a function that checks if a string is a palindrome"}'

answers `{"code": "...", "iterations": 2, "passed": true}` with the offline model, whose first
attempt misses a case. The UI shows the rounds: `call LLM` (code), `call LLM` (review), twice.
"""

from typing import Any, ClassVar

import restate
from agents import Agent
from restate.ext.openai import DurableRunner

from app.runtime.request_models import RequestModel, message_field
from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL

MAX_ROUNDS = 3


class CodeRequest(RequestModel):
    """A piece of code to write."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"task": "Write a function that checks if a string is a palindrome"}
    ]

    task: str = message_field(
        "Write a function that checks if a string is a palindrome", "What the code must do."
    )


generator = Agent[restate.Context](
    name="CodeGenerator",
    instructions="You are a code generator. Write clean, correct code.",
    model=MODEL,
)

evaluator = Agent[restate.Context](
    name="CodeEvaluator",
    instructions="You are a code reviewer. Evaluate the code for correctness, readability, and edge "
    "cases. Respond with PASS if acceptable, or FAIL: <feedback> with specific issues to fix.",
    model=MODEL,
)

code_service = restate.Service("CodeGenerator")


@code_service.handler()
async def generate(restate_context: restate.Context, req: CodeRequest) -> dict[str, Any]:
    code, feedback = "", ""
    for rounds in range(1, MAX_ROUNDS + 1):
        prompt = f"Task: {req.task}"
        if feedback:
            prompt += f"\n\nPrevious attempt was rejected:\n{feedback}\n\nPlease fix the issues."
        generated = await DurableRunner.run(
            generator, prompt, context=restate_context, run_options=LLM_RETRY, max_turns=MAX_TURNS
        )
        code = str(generated.final_output)

        review = await DurableRunner.run(
            evaluator,
            f"Task: {req.task}\n\nCode:\n{code}",
            context=restate_context,
            run_options=LLM_RETRY,
            max_turns=MAX_TURNS,
        )
        verdict = str(review.final_output).strip()
        if verdict.startswith("PASS"):
            return {"code": code, "iterations": rounds, "passed": True}
        feedback = verdict

    # Out of rounds: the last attempt, and why it did not pass.
    return {"code": code, "iterations": MAX_ROUNDS, "passed": False, "feedback": feedback}
