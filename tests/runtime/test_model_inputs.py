"""What a real model may send, read the way the tour means it: unit tests, no server."""

import pytest
from agents import Agent
from agents.items import ToolCallItem, ToolCallOutputItem
from openai.types.chat import ChatCompletionMessageFunctionToolCall
from openai.types.chat.chat_completion_message_function_tool_call import Function
from openai.types.responses import ResponseFunctionToolCall

from app.advanced.manual_loop_agent import check_call
from app.runtime.agent_runs import describe_tool_calls
from app.utils.bookings import flies_to_sfo
from app.utils.weather import WeatherRequest


@pytest.mark.parametrize(
    "destination",
    ["San Francisco", "san francisco, CA", "SFO", "San Francisco International Airport (SFO)", "sfo "],
)
def test_every_spelling_of_san_francisco_meets_the_simulated_outage(destination: str) -> None:
    assert flies_to_sfo(destination)


@pytest.mark.parametrize("destination", ["Seattle", "South San Fran", "Sfork", "LAX"])
def test_other_destinations_fly(destination: str) -> None:
    assert not flies_to_sfo(destination)


def tool_call(name: str, arguments: str) -> ChatCompletionMessageFunctionToolCall:
    return ChatCompletionMessageFunctionToolCall(
        id="call_1", type="function", function=Function(name=name, arguments=arguments)
    )


def test_the_manual_loop_reads_a_good_call() -> None:
    assert check_call(tool_call("get_weather", '{"city": "Tokyo"}')) == WeatherRequest(city="Tokyo")


@pytest.mark.parametrize(
    ("name", "arguments", "told"),
    [
        ("get_time", "{}", "Error: there is no tool 'get_time'. The only tool is 'get_weather'."),
        ("get_weather", '{"city": "Tok', "Error: invalid arguments for get_weather (Unterminated string"),
        ("get_weather", '{"town": "Tokyo"}', "Error: invalid arguments for get_weather (Field required"),
        ("get_weather", "null", "Error: invalid arguments for get_weather ("),
    ],
)
def test_the_manual_loop_tells_the_model_what_is_wrong(name: str, arguments: str, told: str) -> None:
    answer = check_call(tool_call(name, arguments))

    assert isinstance(answer, str) and answer.startswith(told)


def test_a_looping_run_is_described_by_what_the_model_called() -> None:
    agent = Agent(name="WeatherAgent")

    def call(i: int, name: str) -> ToolCallItem:
        raw = ResponseFunctionToolCall(type="function_call", call_id=f"c{i}", name=name, arguments="{}")
        return ToolCallItem(agent=agent, raw_item=raw)

    def output(i: int, text: str) -> ToolCallOutputItem:
        raw = {"type": "function_call_output", "call_id": f"c{i}", "output": text}
        return ToolCallOutputItem(agent=agent, raw_item=raw, output=text)  # type: ignore[arg-type]

    items = [
        call(1, "no_such_tool"),
        output(1, "Tool 'no_such_tool' not found."),
        call(2, "get_weather"),
        output(2, "An error occurred while calling the tool: Invalid JSON input for tool get_weather"),
        call(3, "get_weather"),
        output(3, "temperature=16.0 description='Partly cloudy'"),
        call(4, "no_such_tool"),
        output(4, "Tool 'no_such_tool' not found."),
    ]

    assert (
        describe_tool_calls(items, {"get_weather"})
        == "unknown tool 'no_such_tool' x2, get_weather x2 (invalid arguments x1)"
    )
    # A tool the agent has without listing it (an MCP server's) is known by its having run, and
    # its refusal of the arguments is the MCP SDK's validation error.
    mcp_refusal = {
        "type": "text",
        "text": "Error executing tool check_fraud: 1 validation error for check_fraudArguments\nclaim\n  Field required",
    }
    items += [
        call(5, "check_fraud"),
        output(5, str(mcp_refusal)),
        call(6, "check_fraud"),
        output(6, "low risk"),
    ]
    assert (
        describe_tool_calls(items, set())
        == "unknown tool 'no_such_tool' x2, get_weather x2 (invalid arguments x1), check_fraud x2 (invalid arguments x1)"
    )


def test_a_claim_tool_tells_the_model_what_to_write_for_what_the_user_did_not_say() -> None:
    from app.human_approval_agent import human_approval

    schema = human_approval.params_json_schema
    claim = schema["$defs"]["InsuranceClaim"] if "$defs" in schema else schema["properties"]["claim"]
    unsaid = {
        name: field.get("description", "")
        for name, field in claim["properties"].items()
        if name not in ("amount", "reason")  # what every claim states: how much, for what
    }

    assert "null if unknown" in unsaid.pop("date")
    assert unsaid == {
        "category": "The kind of claim, e.g. medical or auto; 'other' if the claim does not say.",
        "placeOfService": "Where the service was provided, e.g. a hospital; 'unknown' if the claim does not say.",
    }
