"""Durable execution: a weather agent that survives crashes and a failing weather API.

`DurableRunner.run` journals every LLM response (the `call LLM` steps) and the tool's lookup runs
as the durable step `Get weather`: a retry, a crash or a restart replays what is done instead of
paying for it twice, and continues from there.

    curl localhost:8080/WeatherAgent/run --json '{"message": "What is the weather like in San Francisco?"}'

answers with a sentence about the weather in San Francisco. In the UI (http://localhost:9070),
the invocation's journal: `call LLM`, `Get weather`, `call LLM`. Ask for Denver to see the
simulated outage: the invocation retries `Get weather` until `fail_on_denver` is removed from
app/utils/weather.py, then it finishes.
"""

import restate
from agents import Agent, RunContextWrapper
from restate.ext.openai import DurableRunner, durable_function_tool

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.weather import WeatherPrompt, WeatherRequest, WeatherResponse, fetch_weather


@durable_function_tool
async def get_weather(wrapper: RunContextWrapper[restate.Context], req: WeatherRequest) -> WeatherResponse:
    """Get the current weather for a given city."""
    # The Restate Context travels to the tool in the agent's run context. The step's result is
    # journaled: once fetched, the weather is never fetched again for this invocation.
    restate_context = wrapper.context
    return await restate_context.run_typed("Get weather", fetch_weather, req=req)


weather_agent = Agent[restate.Context](
    name="WeatherAgent",
    instructions="You are a helpful agent that provides weather updates.",
    tools=[get_weather],
    model=MODEL,
)

agent_service = restate.Service("WeatherAgent")


@agent_service.handler()
async def run(restate_context: restate.Context, prompt: WeatherPrompt) -> str:
    # Bounded: each LLM call gets LLM_MAX_ATTEMPTS attempts, the run MAX_TURNS LLM calls.
    result = await DurableRunner.run(
        weather_agent, prompt.message, context=restate_context, run_options=LLM_RETRY, max_turns=MAX_TURNS
    )
    return str(result.final_output)
