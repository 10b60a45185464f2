"""Error handling: what is retried, what is not, and how a failure becomes an answer.

Restate retries transient errors (network trouble, rate limits, a crashed process) and stops at
terminal errors (bad input, business rules). LLM calls are paid for, so this agent caps them:

- each LLM call gets at most 3 attempts (`RunOptions`); after the last one the call fails with a
  terminal error, which the handler turns into a graceful answer;
- the OpenAI client of the tour (app/utils/llm.py) classifies HTTP errors: 400/401/403/404/422
  are terminal at once (a bad key is not retried), 408/409/429/5xx are retried, after the
  Retry-After the API asked for;
- tool errors: `get_weather` lets terminal errors end the run (they are caught below), while
  `get_weather_or_explain` hands them back to the LLM, which explains them to the user. Restate's
  own signals — suspensions and cancellations — always go up to Restate, never to the LLM;
- the service's retry policy caps the attempts of the whole invocation: a handler that keeps
  failing (ask about Denver) ends after 5 attempts instead of retrying forever.

    curl localhost:8080/ErrorHandlingAgent/run --json '{"message": "What is the weather like in Atlantis?"}'
    curl localhost:8080/ErrorHandlingAgent/run_with_explanations --json '{"message": "What is the weather like in Atlantis?"}'
"""

from datetime import timedelta
from typing import Any

import restate
from agents import Agent, ModelBehaviorError, RunContextWrapper
from restate.exceptions import is_internal_exception
from restate.ext.openai import durable_function_tool
from restate.ext.openai.functions import raise_terminal_errors

from app.utils.agent_runs import run_agent
from app.utils.llm import MODEL
from app.utils.models import WeatherPrompt, WeatherRequest, WeatherResponse
from app.utils.utils import fetch_weather

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
        result = await run_agent(agent, message, context=restate_context, run_options=LLM_CALL_RETRIES)
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
