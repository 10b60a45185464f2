"""Running an agent durably, and what happens when the model misbehaves.

`run_agent` is `DurableRunner.run` (restate.ext.openai) with the tour's settings: bounded LLM
retries, bounded turns, and one answer for every way a model can misbehave.

A model's answer is journaled. When that answer is wrong (a tool that does not exist, arguments
that are not JSON, tool calls without end, nothing at all, a refusal), retrying the invocation
replays the same answer and fails the same way, forever. So a misbehaviour is never left to
Restate's retries:

| the model ...                       | what happens                                                   |
| ----------------------------------- | -------------------------------------------------------------- |
| calls a tool that does not exist    | it is told (`Tool 'x' not found.`) and may try again           |
| sends arguments that are not JSON,  | it is told what is wrong (the tool's error message) and may    |
| or do not fit the tool's schema     | try again                                                      |
| keeps calling tools (MAX_TURNS)     | TerminalError naming what it called, e.g. `unknown tool 'x' x10` |
| answers with nothing                | TerminalError: `The model gave an empty answer` (an agent with |
|                                     | an output type is asked again, within MAX_TURNS, first)        |
| refuses                             | TerminalError quoting the refusal                              |
| answers what the agent's output     | TerminalError: `The model's answer does not fit the agent's    |
| type cannot parse (structured out.) | output type (...)`                                             |
| stops early (status `incomplete`)   | TerminalError at once (app/utils/llm.py): asking again gets the same cut-off |
| fails the response (`failed`)       | retried like an API error, at most LLM_MAX_ATTEMPTS times      |

"Told" is bounded too: every retry the model gets is a turn, and MAX_TURNS caps the turns.
The terminal errors carry HTTP status 502: the upstream model gave an unusable answer; it is
neither the caller's fault (4xx) nor something a retry would fix.

A guardrail that trips (Agents SDK input or output guardrails, e.g. app/advanced/guarded_agent.py)
ends the invocation with a TerminalError, HTTP 422, naming it:
`Input guardrail 'is_insurance_claim' tripped: <the guardrail's output_info>`. Its verdict is
journaled, so a retry could only trip it again.

Every LLM call is also recorded in the cost ledger (`LlmUsage`, app/advanced/llm_usage.py) by a
hook installed here (a caller's own hooks still run, right after it): counted once, replays and
crashes included.
"""

import functools
import os
from collections import Counter
from typing import Any, cast

import restate
from agents import (
    Agent,
    Handoff,
    HandoffCallItem,
    InputGuardrailTripwireTriggered,
    ModelBehaviorError,
    ModelResponse,
    OutputGuardrailTripwireTriggered,
    RunConfig,
    RunContextWrapper,
    RunErrorHandlerInput,
    RunErrorHandlers,
    RunHooks,
    RunResult,
    Tool,
    ToolCallItem,
    ToolCallOutputItem,
    TResponseInputItem,
)
from agents.run_config import CallModelData, ModelInputData
from restate import TerminalError
from restate.ext.openai import DurableRunner, restate_context

from app.advanced.llm_usage import record_llm_call, reraise_counting_bill
from app.utils.llm import LLM_RETRY, MODEL, ModelMisbehaved
from app.utils.token_stream import TextStream, run_streamed

EMPTY_ANSWER = "The model gave an empty answer (no text and no tool call)."

# Each turn is one LLM call: an agent that needs more than this many is looping.
MAX_TURNS = int(os.environ.get("AGENT_MAX_TURNS", "10"))


def without_nulls(data: CallModelData[Any]) -> ModelInputData:
    """The model's input without `null` fields, as the API's schema has them: absent, not null.

    A journaled LLM answer comes back from Restate with every optional field present, as `null`
    (e.g. a function call's `namespace`), and the Agents SDK sends such items back as the next
    turn's input; the published schema types these fields as strings.
    """
    items = [
        {key: value for key, value in item.items() if value is not None} if isinstance(item, dict) else item
        for item in data.model_data.input
    ]
    return ModelInputData(
        input=cast(list[TResponseInputItem], items), instructions=data.model_data.instructions
    )


RUN_CONFIG = RunConfig(
    # The model is told about a tool it invented, instead of the run failing on the spot.
    tool_not_found_behavior="return_error_to_model",
    call_model_input_filter=without_nulls,
)


def describe_tool_calls(items: list[Any], known_tools: set[str]) -> str:
    """`get_weather x10` or `unknown tool 'x' x3, get_weather x2 (invalid arguments x2)`; handoffs
    count as the calls they are (`transfer_to_intakeagent x2`)."""
    outputs = {
        _raw(item, "call_id"): str(item.output) for item in items if isinstance(item, ToolCallOutputItem)
    }
    calls: Counter[str] = Counter()
    invalid: Counter[str] = Counter()
    for item in items:
        if not isinstance(item, ToolCallItem | HandoffCallItem):
            continue
        name = str(_raw(item, "name") or "?")
        calls[name] += 1
        if outputs.get(_raw(item, "call_id"), "").startswith("An error occurred while calling the tool"):
            invalid[name] += 1
    parts = []
    for name, count in calls.most_common():
        label = name if name in known_tools else f"unknown tool {name!r}"
        bad = f" (invalid arguments x{invalid[name]})" if invalid[name] else ""
        parts.append(f"{label} x{count}{bad}")
    return ", ".join(parts) or "no tool"


def _raw(item: Any, key: str) -> Any:
    raw = item.raw_item
    return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)


def _tool_names(agent: Agent[Any]) -> set[str]:
    names = {getattr(tool, "name", "") for tool in agent.tools}
    for target in agent.handoffs:
        names.add(target.tool_name if isinstance(target, Handoff) else Handoff.default_tool_name(target))
    return names


def _max_turns(data: RunErrorHandlerInput[Any]) -> Any:
    what = describe_tool_calls(data.run_data.new_items, _tool_names(data.run_data.last_agent))
    if what == "no tool":
        # Turns without a tool call and without an answer: an agent with an output type is asked
        # again after an empty answer, until the turns run out.
        raise ModelMisbehaved(EMPTY_ANSWER)
    raise ModelMisbehaved(
        f"The model called tools for {MAX_TURNS} turns without answering ({what}); giving up."
    )


def _refusal(data: RunErrorHandlerInput[Any]) -> Any:
    refusal = getattr(data.error, "refusal", "")
    raise ModelMisbehaved(f"The model refused to answer: {refusal!r}")


ERROR_HANDLERS: RunErrorHandlers[Any] = {"max_turns": _max_turns, "model_refusal": _refusal}

# A request that a guardrail refuses: it cannot be processed as asked (Unprocessable Content).
GUARDRAIL_STATUS = 422


def guardrail_tripped(
    error: InputGuardrailTripwireTriggered | OutputGuardrailTripwireTriggered,
) -> TerminalError:
    """`Input guardrail 'is_insurance_claim' tripped: <reason>`, as a terminal 422."""
    kind = "Input" if isinstance(error, InputGuardrailTripwireTriggered) else "Output"
    result = error.guardrail_result
    info = result.output.output_info
    reason = info if isinstance(info, str) else getattr(info, "reason", None) or "no reason given"
    return TerminalError(
        f"{kind} guardrail '{result.guardrail.get_name()}' tripped: {reason}", status_code=GUARDRAIL_STATUS
    )


class RecordUsage(RunHooks[Any]):
    """Records each LLM call in the cost ledger, then runs the caller's hooks (if any).

    `on_llm_end` runs after the journaled `call LLM` step, on the first run and on every replay,
    with the journaled response: the ledger's one-way send is made at the same place of the
    journal each time, so Restate keeps the first and the call is counted once.
    """

    def __init__(self, then: RunHooks[Any] | None = None) -> None:
        self.then = then or RunHooks()

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
    ) -> None:
        model = agent.model if isinstance(agent.model, str) and agent.model else MODEL
        usage = response.usage
        record_llm_call(restate_context(), model, usage.input_tokens, usage.output_tokens)
        await self.then.on_llm_end(context, agent, response)

    async def on_llm_start(
        self,
        context: RunContextWrapper[Any],
        agent: Agent[Any],
        system_prompt: str | None,
        input_items: list[TResponseInputItem],
    ) -> None:
        await self.then.on_llm_start(context, agent, system_prompt, input_items)

    async def on_agent_start(self, context: Any, agent: Agent[Any]) -> None:
        await self.then.on_agent_start(context, agent)

    async def on_agent_end(self, context: Any, agent: Agent[Any], output: Any) -> None:
        await self.then.on_agent_end(context, agent, output)

    async def on_handoff(
        self, context: RunContextWrapper[Any], from_agent: Agent[Any], to_agent: Agent[Any]
    ) -> None:
        await self.then.on_handoff(context, from_agent, to_agent)

    async def on_tool_start(self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool) -> None:
        await self.then.on_tool_start(context, agent, tool)

    async def on_tool_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool, result: object
    ) -> None:
        await self.then.on_tool_end(context, agent, tool, result)


async def run_agent(
    starting_agent: Agent[Any],
    input: str | list[TResponseInputItem],
    *,
    context: Any,
    run_options: restate.RunOptions[Any] | None = None,
    hooks: RunHooks[Any] | None = None,
    on_text: TextStream | None = None,
    **kwargs: Any,
) -> RunResult:
    """`DurableRunner.run` with bounded LLM attempts and turns, and a terminal error for a model
    that misbehaves (see the table above), and every LLM call recorded in the cost ledger. Every
    agent of the tour runs through here.

    `on_text`: stream the text of the answers to the run's topic as the model writes it
    (app/utils/token_stream.py); the model calls are journaled exactly as without it."""
    runner = DurableRunner.run if on_text is None else functools.partial(run_streamed, text=on_text)
    try:
        result = await runner(
            starting_agent,
            input,
            context=context,
            run_options=run_options or LLM_RETRY,
            run_config=RUN_CONFIG,
            max_turns=MAX_TURNS,
            error_handlers=ERROR_HANDLERS,
            hooks=RecordUsage(then=hooks),
            **kwargs,
        )
    except restate.TerminalError as e:
        reraise_counting_bill(restate_context(), e)  # a cut-off answer is billed too: counted
    except (InputGuardrailTripwireTriggered, OutputGuardrailTripwireTriggered) as e:
        raise guardrail_tripped(e) from e
    except ModelBehaviorError as e:
        # e.g. text that is not the JSON of the agent's output_type: the journaled answer would
        # fail the same way on every retry.
        detail = str(e) if len(str(e)) <= 300 else str(e)[:300] + "..."
        raise ModelMisbehaved(
            f"The model's answer does not fit the agent's output type ({starting_agent.name}): {detail}"
        ) from e
    if result.final_output is None or (
        isinstance(result.final_output, str) and not result.final_output.strip()
    ):
        raise ModelMisbehaved(EMPTY_ANSWER)
    return result
