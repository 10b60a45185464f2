"""Unit tests of app/runtime/request_body.py: the Agents SDK's requests for the tour's agents are sent
byte for byte as openai's own transform would build them, without that transform's walk."""

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any

import httpx2
import openai
import pytest
from agents import Agent, AgentOutputSchema, ModelSettings, handoff
from agents.models.interface import ModelTracing
from agents.models.openai_responses import OpenAIResponsesModel
from openai._utils._transform import PropertyInfo
from openai.resources.responses import responses
from openai.types.responses import ResponseOutputMessage, ResponseOutputText
from typing_extensions import TypedDict

from app.advanced.guarded_agent import guardrail_agent
from app.advanced.rollback_agent import booking_agent
from app.durable_agent import weather_agent
from app.multi_agent import intake_agent
from app.remote_agents import claim_approval_coordinator
from app.runtime import request_body
from app.utils.claims import ClaimPrompt

# A second turn: the question, the tool call the model made, its result, an earlier answer.
SECOND_TURN: list[Any] = [
    {"role": "user", "content": "What is the weather like in San Francisco?"},
    {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"req": {"city": "San Francisco"}}',
        "status": "completed",
    },
    {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"temperature": "23", "description": "Sunny"}',
    },
    {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Sunny, 23 degrees.", "annotations": []}],
    },
]

AGENTS = [
    weather_agent,
    claim_approval_coordinator,
    intake_agent,
    booking_agent,
    guardrail_agent("is_insurance_claim", "Is this an insurance claim?", ClaimPrompt),
]


@pytest.fixture
def openai_transform() -> Iterator[Any]:
    """openai's own transform, put back after the test whatever the test installed."""
    installed = responses.async_maybe_transform
    yield getattr(installed, "openai_transform", installed)
    responses.async_maybe_transform = installed


async def sent_bodies(agent: Agent[Any], stream: bool) -> list[bytes]:
    """The request bodies the Agents SDK sends for `agent`'s second turn (refused by a fake API)."""
    bodies: list[bytes] = []

    def api(request: httpx2.Request) -> httpx2.Response:
        bodies.append(request.content)
        return httpx2.Response(400, json={"error": {"message": "recorded", "type": "invalid_request_error"}})

    client = openai.AsyncOpenAI(
        api_key="test", max_retries=0, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(api))
    )
    model = OpenAIResponsesModel(model="gpt-4.1", openai_client=client)
    arguments: dict[str, Any] = {
        "system_instructions": str(agent.instructions),
        "input": SECOND_TURN,
        "model_settings": ModelSettings(max_tokens=1000),
        "tools": list(agent.tools),
        "output_schema": AgentOutputSchema(agent.output_type) if agent.output_type else None,
        "handoffs": [handoff(h) if isinstance(h, Agent) else h for h in agent.handoffs],
        "tracing": ModelTracing.DISABLED,
    }
    with pytest.raises(openai.BadRequestError):
        if stream:
            async for _ in model.stream_response(**arguments):
                pass
        else:
            await model.get_response(**arguments)
    return bodies


@pytest.mark.parametrize("stream", [False, True], ids=["get_response", "stream_response"])
@pytest.mark.parametrize("agent", AGENTS, ids=[a.name for a in AGENTS])
def test_each_agents_request_is_sent_as_openai_would_send_it_without_the_walk(
    agent: Agent[Any], stream: bool, openai_transform: Any
) -> None:
    responses.async_maybe_transform = openai_transform
    expected = asyncio.run(sent_bodies(agent, stream))

    walks: list[Any] = []

    async def counted(data: Any, expected_type: Any) -> Any:
        walks.append(expected_type)
        return await openai_transform(data, expected_type)

    responses.async_maybe_transform = counted
    assert request_body.install()
    sent = asyncio.run(sent_bodies(agent, stream))

    assert len(expected) == 1 and b'"tools"' in expected[0] and b'"input"' in expected[0]
    assert sent == expected
    assert walks == []  # the body went around the walk, not through it


def test_a_body_with_more_than_json_values_goes_through_openais_transform(openai_transform: Any) -> None:
    """A pydantic model in the input (which the Agents SDK does not send, but a caller might)."""
    answer = ResponseOutputMessage(
        id="msg_1",
        role="assistant",
        status="completed",
        type="message",
        content=[ResponseOutputText(annotations=[], text="Sunny.", type="output_text")],
    )

    async def sent() -> bytes:
        bodies: list[bytes] = []

        def api(request: httpx2.Request) -> httpx2.Response:
            bodies.append(request.content)
            return httpx2.Response(400, json={"error": {"message": "recorded"}})

        client = openai.AsyncOpenAI(
            api_key="test", max_retries=0, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(api))
        )
        with pytest.raises(openai.BadRequestError):
            await client.responses.create(
                model="gpt-4.1", input=[answer, {"role": "user", "content": "And now?"}]
            )
        return bodies[0]

    responses.async_maybe_transform = openai_transform
    expected = asyncio.run(sent())
    assert request_body.install()
    assert asyncio.run(sent()) == expected
    assert b'"text":"Sunny."' in expected.replace(b" ", b"")


def test_a_type_with_an_alias_or_a_format_is_seen_however_deep() -> None:
    class Inner(TypedDict):
        account_holder: Annotated[str, PropertyInfo(alias="accountHolder")]

    class Outer(TypedDict):
        items: list[Inner | str]

    class Dated(TypedDict):
        when: Annotated[str, PropertyInfo(format="iso8601")]

    assert request_body.renames_or_formats(Outer)
    assert request_body.renames_or_formats(dict[str, list[Dated]])
    assert not request_body.renames_or_formats(dict[str, list[int | str]])


def test_installing_twice_keeps_one_layer(openai_transform: Any) -> None:
    responses.async_maybe_transform = openai_transform
    assert request_body.install()
    first = responses.async_maybe_transform
    assert request_body.install()
    assert responses.async_maybe_transform is first
    assert first.openai_transform is openai_transform  # type: ignore[attr-defined]
