"""Any model, never outside the journal: the WeatherAgent on a `Model` instance.

The Agents SDK lets an agent take a `Model` instance instead of a model's name: another API
(`OpenAIChatCompletionsModel`, for any OpenAI-compatible server), another provider (`LitellmModel`).
restate-sdk's `DurableRunner` journals the models it looks up by name only; the endpoint's agent
runner journals an instance the same way (app/runtime/agent_runs.py), so this agent's LLM calls
are `call LLM` steps like every other, replayed from the journal after a crash.

    curl localhost:8080/AnyModelAgent/run --json '{"message": "What is the weather like in San Francisco?"}'

answers like the WeatherAgent; the UI shows `call LLM`, `Get weather`, `call LLM`. To switch every
agent at once instead: OPENAI_API=chat_completions, OPENAI_MODEL=litellm/... (docs/local-models.md).
"""

import restate
from agents import Agent, OpenAIChatCompletionsModel
from restate.ext.openai import DurableRunner

from app.durable_agent import get_weather
from app.runtime.llm_client import openai_client
from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.weather import WeatherPrompt


def any_model_agent() -> Agent[restate.Context]:
    """The agent, its model a `Model` instance (made with the endpoint's client, which needs its key)."""
    return Agent[restate.Context](
        name="AnyModelAgent",
        instructions="You are a helpful agent that provides weather updates.",
        tools=[get_weather],
        # A Model instance: the Chat Completions API of any OpenAI-compatible server.
        model=OpenAIChatCompletionsModel(model=MODEL, openai_client=openai_client()),
    )


agent_service = restate.Service("AnyModelAgent")


@agent_service.handler()
async def run(restate_context: restate.Context, prompt: WeatherPrompt) -> str:
    result = await DurableRunner.run(
        any_model_agent(), prompt.message, context=restate_context, run_options=LLM_RETRY, max_turns=MAX_TURNS
    )
    return str(result.final_output)
