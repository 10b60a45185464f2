"""Durable execution: a weather agent that survives crashes and a failing weather API.

Every LLM response is journaled by `DurableRunner` and the weather lookup runs as the durable
step "Get weather", so a retry, a crash or a restart replays what is done instead of paying for
it twice, and continues from there.

    curl localhost:8080/WeatherAgent/run --json '{"message": "What is the weather like in San Francisco?"}'

answers with a sentence about the weather in San Francisco. Ask for Denver to see the simulated
weather API outage: the invocation keeps retrying (Restate UI, http://localhost:9070) until
`fail_on_denver` is removed from app/utils/utils.py, then it finishes.
"""

import restate
from agents import Agent, RunContextWrapper
from restate.ext.openai import durable_function_tool

from app.utils.agent_runs import run_agent
from app.utils.llm import MODEL
from app.utils.models import WeatherPrompt, WeatherRequest, WeatherResponse
from app.utils.utils import fetch_weather


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
    result = await run_agent(weather_agent, prompt.message, context=restate_context)
    return str(result.final_output)
