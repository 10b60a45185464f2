"""Error handling: what is retried, what is not, and how a failure becomes an answer.

Each LLM call gets at most 3 attempts (`RunOptions`), then fails with a terminal error that the
handler turns into an answer. Tool errors: `run` lets a terminal one (an unknown city) end the
agent run, `run_with_explanations` hands it to the LLM to explain; Restate's own signals
(suspensions, cancellations) always go to Restate. The service's retry policy ends a handler that
keeps failing (ask about Denver) after 5 attempts. All of it: docs/tour.md, step 10.

    curl localhost:8080/ErrorHandlingAgent/run --json '{"message": "What is the weather like in Atlantis?"}'
    curl localhost:8080/ErrorHandlingAgent/run_with_explanations --json '{"message": "What is the weather like in Atlantis?"}'

The first answers "The agent couldn't complete the request: Unknown location: Atlantis. ...", the
second lets the model say it. In the UI, Denver's invocation ends after its fifth attempt.
"""

from datetime import timedelta
from typing import Any

import restate
from agents import Agent, ModelBehaviorError, RunContextWrapper
from restate.exceptions import is_internal_exception
from restate.ext.openai import DurableRunner, durable_function_tool
from restate.ext.openai.functions import raise_terminal_errors

from app.runtime.settings import MAX_TURNS, MODEL
from app.utils.weather import WeatherPrompt, WeatherRequest, WeatherResponse, fetch_weather

# At most 3 attempts per LLM call, the first retry after one second.
LLM_CALL_RETRIES: restate.RunOptions[Any] = restate.RunOptions(
    max_attempts=3, initial_retry_interval=timedelta(seconds=1)
)


@durable_function_tool
async def get_weather(wrapper: RunContextWrapper[restate.Context], req: WeatherRequest) -> WeatherResponse:
    """Get the current weather for a given city."""
    # Transient failures inside the step are retried by Restate; a TerminalError (unknown city)
    # ends the agent run: durable_function_tool re-raises terminal errors by default.
    return await wrapper.context.run_typed("Get weather", fetch_weather, req=req)


def explain_to_the_llm(context: RunContextWrapper[Any], error: Exception) -> str:
    """Turn a tool's terminal error into a message for the LLM, and nothing else.

    Restate's control flow must reach Restate: its internal exceptions (a suspension) and
    cancellations (TerminalError 409) are raised again; any other error goes up too and Restate
    retries. Only a final verdict about the input — a terminal error, or arguments the model got
    wrong — is worth the LLM's words.
    """
    if isinstance(error, ModelBehaviorError):
        # Arguments that are not JSON or do not fit the schema: the model can correct them.
        return raise_terminal_errors(context, error)
    if (
        is_internal_exception(error)
        or not isinstance(error, restate.TerminalError)
        or error.status_code == 409
    ):
        raise error
    return f"The tool failed and retrying will not help: {error.message}"


@durable_function_tool(name_override="get_weather", failure_error_function=explain_to_the_llm)
async def get_weather_or_explain(
    wrapper: RunContextWrapper[restate.Context], req: WeatherRequest
) -> WeatherResponse:
    """Get the current weather for a given city."""
    return await wrapper.context.run_typed("Get weather", fetch_weather, req=req)


strict_agent = Agent[restate.Context](
    name="WeatherAgent",
    instructions="You are a helpful agent that provides weather updates.",
    tools=[get_weather],
    model=MODEL,
)

explaining_agent = strict_agent.clone(tools=[get_weather_or_explain])

# The whole invocation gets 5 attempts, then Restate kills it: no endless retries of a handler
# that cannot succeed (a bug, a dependency that stays down).
agent_service = restate.Service(
    "ErrorHandlingAgent",
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        max_interval=timedelta(seconds=2),
        max_attempts=5,
        on_max_attempts="kill",
    ),
)


async def answer(restate_context: restate.Context, agent: Agent[restate.Context], message: str) -> str:
    try:
        result = await DurableRunner.run(
            agent, message, context=restate_context, run_options=LLM_CALL_RETRIES, max_turns=MAX_TURNS
        )
    except restate.TerminalError as e:
        # The LLM calls ran out of attempts, the API refused the request, or a tool failed for
        # good: answer with what went wrong instead of failing the invocation.
        return f"The agent couldn't complete the request: {e.message}"
    return str(result.final_output)


@agent_service.handler()
async def run(restate_context: restate.Context, prompt: WeatherPrompt) -> str:
    return await answer(restate_context, strict_agent, prompt.message)


@agent_service.handler()
async def run_with_explanations(restate_context: restate.Context, prompt: WeatherPrompt) -> str:
    return await answer(restate_context, explaining_agent, prompt.message)
