"""Manual agent loop: your own loop over the OpenAI API, every step durable.

No agent framework: the loop calls chat completions, runs the tools the model asks for, and
stops when the model answers. Each LLM call is a durable step with a bounded number of attempts,
and the tool calls of one turn run in parallel, each as its own durable step (`restate.gather`).
After a crash the loop replays from the journal: no LLM call and no finished tool call is made
twice. From here, add what you need between steps: approvals, state, custom stop conditions.

    curl localhost:8080/ManualLoopAgent/run --json '{"message": "What is the weather like in New York and San Francisco?"}'

The UI shows the turns: `LLM call`, then two `Get weather` steps side by side, then the final
`LLM call`.
"""

from typing import Any

import restate
from openai import pydantic_function_tool
from openai.types.chat import ChatCompletion

from app.utils.llm import LLM_RETRY, MODEL, openai_client
from app.utils.models import MultiWeatherPrompt, WeatherRequest, WeatherResponse
from app.utils.utils import fetch_weather

TOOLS = [
    pydantic_function_tool(
        WeatherRequest, name="get_weather", description="Get the current weather in a city."
    )
]

# A loop that never ends would call the model forever: cap the turns.
MAX_TURNS = 10

manual_loop_agent = restate.Service("ManualLoopAgent")


@manual_loop_agent.handler()
async def run(ctx: restate.Context, prompt: MultiWeatherPrompt) -> str:
    messages: list[Any] = [
        {"role": "system", "content": "You are a helpful agent that provides weather updates."},
        {"role": "user", "content": prompt.message},
    ]
    for _ in range(MAX_TURNS):

        async def call_llm() -> ChatCompletion:
            return await openai_client().chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)

        # Journaled: on replay the response comes from the journal, not from the model.
        response = await ctx.run_typed("LLM call", call_llm, LLM_RETRY)
        reply = response.choices[0].message
        tool_calls = [c for c in reply.tool_calls or [] if c.type == "function"]
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
                ]
                or None,
            }
        )
        if not tool_calls:
            return reply.content or ""

        # All tool calls of this turn at once, each its own durable step.
        steps = [
            ctx.run_typed(
                "Get weather", fetch_weather, req=WeatherRequest.model_validate_json(c.function.arguments)
            )
            for c in tool_calls
        ]
        await restate.gather(*steps)
        for call, step in zip(tool_calls, steps, strict=True):
            weather: WeatherResponse = await step
            messages.append({"role": "tool", "tool_call_id": call.id, "content": weather.model_dump_json()})

    raise restate.TerminalError(f"No answer after {MAX_TURNS} turns; giving up rather than looping forever.")
