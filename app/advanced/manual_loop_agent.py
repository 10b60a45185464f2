"""Manual agent loop: your own loop over the OpenAI API, every step durable.

No agent framework: the loop calls chat completions, runs the tools the model asks for, and
stops when the model answers (or after MAX_TURNS calls). Each LLM call is a durable step with
bounded attempts, and the tool calls of one turn run in parallel, each its own durable step
(`restate.gather`): after a crash no LLM call and no finished tool call is made twice. From here,
add what you need between steps: approvals, state, custom stop conditions.

    curl localhost:8080/ManualLoopAgent/run --json '{"message": "What is the weather like in New York and San Francisco?"}'

The UI shows `LLM call`, two `Get weather` steps side by side, `LLM call`, then the one-way call
that sends the run's usage to the cost ledger (app/advanced/llm_usage.py); for a request that
names its tenant, a call that reserves its allowance of the tenant's budget comes first
(app/advanced/spend.py).
"""

import json
from collections import Counter
from typing import Any

import restate
from openai import pydantic_function_tool
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall
from pydantic import ValidationError

from app.advanced.llm_usage import record_usage
from app.runtime.llm_client import ModelMisbehaved, made_by, openai_client
from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.runtime.usage import UsageTally
from app.utils.weather import MultiWeatherPrompt, WeatherRequest, fetch_weather

TOOLS = [
    pydantic_function_tool(
        WeatherRequest, name="get_weather", description="Get the current weather in a city."
    )
]

manual_loop_agent = restate.Service("ManualLoopAgent")


def check_call(call: ChatCompletionMessageFunctionToolCall) -> WeatherRequest | str:
    """The tool's input, or what is wrong with the call, to tell the model.

    The LLM's answer is journaled: a bad call here would be bad again on every retry. So it is
    never raised; the model reads the error as the tool's result and can correct itself.
    """
    if call.function.name != "get_weather":
        return f"Error: there is no tool {call.function.name!r}. The only tool is 'get_weather'."
    try:
        return WeatherRequest.model_validate(json.loads(call.function.arguments))
    except ValueError as e:  # not JSON, or not a WeatherRequest (ValidationError is a ValueError)
        reason = "; ".join(err["msg"] for err in e.errors()) if isinstance(e, ValidationError) else str(e)
        return f"Error: invalid arguments for get_weather ({reason}). Expected {{'city': '<name>'}}."


@manual_loop_agent.handler()
async def run(restate_context: restate.Context, prompt: MultiWeatherPrompt) -> str:
    usage = UsageTally()  # the run's LLM calls, from the journal: sent to the cost ledger once, at the end
    try:
        answer = await agent_loop(restate_context, prompt.message, usage)
    except restate.TerminalError:
        record_usage(restate_context, usage)
        raise
    record_usage(restate_context, usage)
    return answer


async def agent_loop(restate_context: restate.Context, message: str, usage: UsageTally) -> str:
    messages: list[Any] = [
        {"role": "system", "content": "You are a helpful agent that provides weather updates."},
        {"role": "user", "content": message},
    ]
    called: Counter[str] = Counter()
    for _ in range(MAX_TURNS):
        await usage.before_llm_call(restate_context)  # within the tenant's budget, or the run ends here

        async def call_llm() -> ChatCompletion:
            return await openai_client().chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)

        # Journaled: on replay the response comes from the journal, not from the model.
        try:
            response = await restate_context.run_typed("LLM call", call_llm, LLM_RETRY)
        except restate.TerminalError as e:
            usage.reraise_counting_bill(e)  # a cut-off answer is billed too: counted
        tokens = response.usage
        # Counted for the invocation that asked (a rerun copies the answers it does not ask again).
        prompt, completion = (tokens.prompt_tokens, tokens.completion_tokens) if tokens else (0, 0)
        usage.add(MODEL, prompt, completion, made_by=made_by(response))
        reply = response.choices[0].message
        tool_calls = [c for c in reply.tool_calls or [] if c.type == "function"]
        if reply.refusal:
            raise ModelMisbehaved(f"The model refused to answer: {reply.refusal!r}")
        if not tool_calls:
            if not (reply.content or "").strip():
                raise ModelMisbehaved("The model gave an empty answer (no text and no tool call).")
            return reply.content or ""
        messages.append(
            {
                "role": "assistant",
                "content": reply.content,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.function.name, "arguments": c.function.arguments},
                    }
                    for c in tool_calls
                ],
            }
        )

        # All valid tool calls of this turn at once, each its own durable step; every call gets
        # an answer (the API refuses a history with an unanswered tool call).
        checked = [check_call(c) for c in tool_calls]
        called.update(c.function.name for c in tool_calls)
        steps = {
            i: restate_context.run_typed("Get weather", fetch_weather, req=req)
            for i, req in enumerate(checked)
            if isinstance(req, WeatherRequest)
        }
        if steps:
            await restate.gather(*steps.values())
        for i, (call, req) in enumerate(zip(tool_calls, checked, strict=True)):
            result = (await steps[i]).model_dump_json() if i in steps else str(req)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})

    calls = ", ".join(f"{name} x{count}" for name, count in called.most_common())
    raise ModelMisbehaved(
        f"The model called tools for {MAX_TURNS} turns without answering ({calls}); giving up."
    )
