"""The offline model's scripted behaviour.

A policy is an ordered list of skills. Each skill looks at the conversation (instructions, offered
tools, messages) and either answers with a `Reply` or passes (None); the first answer wins. When
every skill passes there is no answer: the server then fails the request loudly (HTTP 422, with
`unscripted`'s description), so no test can pass on a made-up reply. A skill calls tools with arguments taken from the prompt, then, once the
tool outputs are in, writes a final answer grounded in them. Deterministic: the same request
always gets the same reply.

To teach the stand-in a new tour step, write a skill and add it to `SKILLS`.
"""

import re
from collections.abc import Callable

from dev.offline_llm import weather_data
from dev.offline_llm.bookings import booking
from dev.offline_llm.chat import chat
from dev.offline_llm.claims import (
    claim_approval,
    claim_check,
    claim_decider,
    claim_payout,
    claim_tools,
    handoff_router,
)
from dev.offline_llm.conversation import Conversation, Reply, fill_arguments, parse_output
from dev.offline_llm.guardrails import guardrails
from dev.offline_llm.workflows import (
    claims_analyst,
    code_evaluator,
    code_generator,
    document_parser,
    judge,
    report_writer,
    research_planner,
    researcher,
)

Skill = Callable[[Conversation], Reply | None]


# --- extraction from prompts ---------------------------------------------------------------------

_KNOWN_CITIES = sorted(weather_data.CITIES, key=len, reverse=True)
_CITY_AFTER_IN = re.compile(r"\b(?:in|for|at)\s+([A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)")


def extract_cities(text: str) -> list[str]:
    """Cities named in the text, in the order they appear, known ones first-class.

    A capitalised place after "in"/"for"/"at" that the table does not know is returned too, so the
    weather tool gets called and can answer "unknown location" like the real API.
    """
    found: list[tuple[int, str]] = []
    lowered = text.lower()
    taken: list[range] = []
    for city in _KNOWN_CITIES:
        for m in re.finditer(r"\b" + re.escape(city.lower()) + r"\b", lowered):
            span = range(m.start(), m.end())
            if not any(span.start in t or t.start in span for t in taken):
                taken.append(span)
                found.append((m.start(), city))
    if not found:
        for m in _CITY_AFTER_IN.finditer(text):
            found.append((m.start(1), m.group(1)))
    return [city for _, city in sorted(found)]


def _refused_call(output: str) -> bool:
    """The tool never ran: the agent answered the call with an error about its arguments."""
    return output.startswith(("An error occurred while calling the tool", "Error: invalid arguments"))


def _describe_error(output: str) -> str:
    return output.strip().rstrip(".")


# --- skills --------------------------------------------------------------------------------------


def weather(conv: Conversation) -> Reply | None:
    """Agents with a tool taking a `city`: call it once per city asked about, then report."""
    tool = conv.tool_with_param("city")
    if tool is None:
        return None
    # A call the agent refused (arguments that were not JSON, or did not fit) is made again.
    results = [(call, out) for call, out in conv.results(tool.name) if not _refused_call(out)]
    cities = extract_cities(conv.last_user_text())
    if not results and not cities:
        return Reply(text="I can look up the current weather. Which city are you interested in?")
    # Cities not looked up yet (all of them at first; the rest when one call per turn is allowed).
    asked = {_find_value(call.arguments, "city") for call, _ in results}
    missing = [city for city in cities if city not in asked]
    if missing:
        return Reply(calls=[(tool.name, fill_arguments(tool.parameters, {"city": city})) for city in missing])

    lines = []
    for call, output in results:
        city = _find_value(call.arguments, "city") or "that city"
        data = parse_output(output)
        if data and "temperature" in data:
            temp = data["temperature"]
            temp_text = f"{temp:g}" if isinstance(temp, int | float) else str(temp)
            lines.append(f"{city}: {data.get('description', 'no description')}, {temp_text} degrees Celsius")
        else:
            lines.append(f"{city}: I could not get the weather ({_describe_error(output)})")
    if len(lines) == 1:
        city_line = lines[0]
        city, _, rest = city_line.partition(": ")
        if "could not" in rest:
            return Reply(text=f"Sorry, {rest} for {city}.")
        return Reply(text=f"The weather in {city} is currently {rest[0].lower() + rest[1:]}.")
    return Reply(text="Here is the current weather:\n" + "\n".join(f"- {line}" for line in lines))


def unscripted(conv: Conversation) -> str:
    """What the stand-in could not script: the agent, the tools offered and the question."""
    asked = conv.last_user_text().strip()
    asked = asked if len(asked) <= 200 else asked[:200] + "..."
    tools = ", ".join(t.name for t in conv.tools) or "none"
    return (
        f"[offline stand-in] no skill scripts an answer for agent {conv.agent_name()!r} "
        f"(tools offered: {tools}) to {asked or '(no user text)'!r}. "
        "Teach dev/offline_llm/policy.py a skill for it, or set OPENAI_API_KEY to use a real model."
    )


SKILLS: list[Skill] = [
    guardrails,  # first: their instructions talk about claims too
    # the agentic workflows (and the judge): their instructions name them exactly
    document_parser,
    claims_analyst,
    research_planner,
    researcher,
    report_writer,
    code_generator,
    code_evaluator,
    judge,
    booking,
    claim_payout,
    claim_approval,
    handoff_router,
    claim_tools,
    claim_check,
    claim_decider,
    weather,
    chat,
]


def respond(conv: Conversation) -> Reply | None:
    """The first skill's answer, or None when no skill scripts this conversation."""
    for skill in SKILLS:
        reply = skill(conv)
        if reply is not None:
            return reply
    return None


def _find_value(args: dict, key: str) -> str | None:
    """The first value of `key` anywhere in nested arguments."""
    if key in args and isinstance(args[key], str):
        return args[key]
    for value in args.values():
        if isinstance(value, dict) and (found := _find_value(value, key)) is not None:
            return found
    return None
