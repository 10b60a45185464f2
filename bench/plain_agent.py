"""The WeatherAgent without Restate: the same agent, tool and model, run with plain `Runner.run`
in the benchmark's own process, against the same offline LLM. The baseline for the overhead."""

import asyncio

from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled
from openai import AsyncOpenAI

from app.utils.weather import WeatherRequest, WeatherResponse, fetch_weather


@function_tool
async def get_weather(req: WeatherRequest) -> WeatherResponse:
    """Get the current weather for a given city."""
    return await fetch_weather(req)


plain_weather_agent = Agent(
    name="WeatherAgent",
    instructions="You are a helpful agent that provides weather updates.",
    tools=[get_weather],
    model="gpt-4.1",
)


_llm_url = ""
_loop_of_client: object = None


def configure(llm_url: str) -> None:
    global _llm_url
    _llm_url = llm_url
    set_tracing_disabled(True)


async def run_plain(message: str = "What is the weather like in San Francisco?") -> str:
    global _loop_of_client
    loop = asyncio.get_running_loop()
    if _loop_of_client is not loop:  # a client's connections belong to one event loop
        set_default_openai_client(
            # The OpenAI client's own retries, as a plain agent has them (the durable agent leaves
            # retrying to Restate): a connection refused under 256 at once is not the end of a run.
            AsyncOpenAI(base_url=f"{_llm_url}/v1", api_key="offline-stand-in", max_retries=2)
        )
        _loop_of_client = loop
    result = await Runner.run(plain_weather_agent, message)
    return str(result.final_output)
