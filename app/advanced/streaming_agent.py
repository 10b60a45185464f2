"""Streaming intermediate results: an agent that publishes its progress while it works.

`StreamingAgent/run` publishes an event for each LLM call and each tool step to a topic for the
run: the Virtual Object `AgentEvents`, keyed by the run's invocation id. Publishing is a durable
one-way send, so the events are journaled like everything else: after a crash and a replay,
none is published twice, and none is lost. Events are numbered; a reader asks for everything
after its offset, so a reader that reconnects from its offset misses none and sees none twice.

    curl localhost:8080/StreamingAgent/run/send --json '{"message": "What is the weather like in Tokyo?"}'
        -> {"invocationId": "inv_1ab...", ...}
    curl -N localhost:9080/streams/inv_1ab...                 # server-sent events, until done
    curl 'localhost:9080/streams/inv_1ab.../events?offset=2&wait=10'   # long-poll from offset 2

The two /streams routes are served by the endpoint next to the Restate services (they read the
topic through the Restate ingress); `curl localhost:8080/AgentEvents/inv_1ab.../read --json '{"offset": 0}'`
reads the topic directly.
"""

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

import httpx
import restate
from agents import Agent, ModelResponse, RunContextWrapper, RunHooks, TResponseInputItem
from pydantic import BaseModel, Field
from restate.ext.openai import durable_function_tool

from app.utils.agent_runs import run_agent
from app.utils.llm import MODEL
from app.utils.models import WeatherPrompt, WeatherRequest, WeatherResponse
from app.utils.utils import fetch_weather

# --- the topic -----------------------------------------------------------------------------------

agent_events = restate.VirtualObject("AgentEvents")


class ReadRequest(BaseModel):
    offset: int = Field(default=0, ge=0, description="Number of events already seen.")


@agent_events.handler()
async def publish(ctx: restate.ObjectContext, event: dict[str, Any]) -> None:
    events: list[dict[str, Any]] = await ctx.get("events", type_hint=list) or []
    events.append({**event, "offset": len(events)})
    ctx.set("events", events)


@agent_events.handler(kind="shared")
async def read(ctx: restate.ObjectSharedContext, req: ReadRequest) -> dict[str, Any]:
    events: list[dict[str, Any]] = await ctx.get("events", type_hint=list) or []
    return {
        "events": events[req.offset :],
        "next_offset": max(len(events), req.offset),
        "done": any(e["type"] in ("done", "error") for e in events),
    }


# --- the agent -----------------------------------------------------------------------------------


def emit(ctx: restate.Context, event: dict[str, Any]) -> None:
    """Publish to this run's topic: a journaled send, made once even if the run is replayed."""
    ctx.object_send(publish, key=ctx.request().id, arg=event)


@durable_function_tool
async def get_weather(wrapper: RunContextWrapper[restate.Context], req: WeatherRequest) -> WeatherResponse:
    """Get the current weather for a given city."""
    ctx = wrapper.context
    # Published from inside the tool, where Restate runs tool calls one at a time: with several
    # tool calls in a turn, the events keep one order on every replay.
    emit(ctx, {"type": "tool_start", "tool": "get_weather", "city": req.city})
    weather = await ctx.run_typed("Get weather", fetch_weather, req=req)
    emit(ctx, {"type": "tool_end", "tool": "get_weather", "city": req.city, "result": weather.model_dump()})
    return weather


class ProgressHooks(RunHooks[restate.Context]):
    """Publishes an event before and after every LLM call (they happen one at a time)."""

    async def on_llm_start(
        self,
        context: RunContextWrapper[restate.Context],
        agent: Agent[restate.Context],
        system_prompt: str | None,
        input_items: list[TResponseInputItem],
    ) -> None:
        emit(context.context, {"type": "llm_start", "agent": agent.name})

    async def on_llm_end(
        self,
        context: RunContextWrapper[restate.Context],
        agent: Agent[restate.Context],
        response: ModelResponse,
    ) -> None:
        calls = [item.name for item in response.output if item.type == "function_call"]
        emit(context.context, {"type": "llm_end", "agent": agent.name, "tool_calls": calls})


streaming_weather_agent = Agent[restate.Context](
    name="StreamingAgent",
    instructions="You are a helpful agent that provides weather updates.",
    tools=[get_weather],
    model=MODEL,
)

agent_service = restate.Service("StreamingAgent")


@agent_service.handler()
async def run(ctx: restate.Context, prompt: WeatherPrompt) -> str:
    try:
        result = await run_agent(streaming_weather_agent, prompt.message, context=ctx, hooks=ProgressHooks())
    except restate.TerminalError as e:
        emit(ctx, {"type": "error", "message": e.message})
        raise
    emit(ctx, {"type": "done", "output": str(result.final_output)})
    return str(result.final_output)


# --- reading the stream over HTTP (served by the endpoint, outside Restate) -----------------------

INGRESS = os.environ.get("RESTATE_INGRESS_URL", "http://localhost:8080").rstrip("/")
POLL_SECONDS = 0.25


async def _read(client: httpx.AsyncClient, run_id: str, offset: int) -> dict[str, Any]:
    resp = await client.post(f"{INGRESS}/AgentEvents/{run_id}/read", json={"offset": offset})
    resp.raise_for_status()
    page: dict[str, Any] = resp.json()
    return page


async def _long_poll(run_id: str, offset: int, wait: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    async with httpx.AsyncClient(timeout=30) as client:
        while True:
            page = await _read(client, run_id, offset)
            if page["events"] or page["done"] or time.monotonic() >= deadline:
                return page
            await asyncio.sleep(POLL_SECONDS)


async def streams_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """GET /streams/{run_id} (server-sent events) and /streams/{run_id}/events (long-poll JSON)."""
    parts = scope["path"].strip("/").split("/")
    query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
    if scope["method"] != "GET" or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "events"):
        await _respond(send, 404, b'{"message": "GET /streams/{run_id} or /streams/{run_id}/events"}')
        return
    run_id = parts[1]
    try:
        # A reconnecting SSE client sends the id of the last event it saw.
        offset = int(
            query.get("offset") or (int(headers["last-event-id"]) + 1 if "last-event-id" in headers else 0)
        )
        wait = min(float(query.get("wait", "10")), 60.0)
    except ValueError:
        await _respond(send, 400, b'{"message": "offset must be an integer and wait a number of seconds"}')
        return

    if len(parts) == 3:
        await _respond(send, 200, json.dumps(await _long_poll(run_id, offset, wait)).encode())
        return

    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})  # fmt: skip
    async with httpx.AsyncClient(timeout=30) as client:
        while True:
            page = await _read(client, run_id, offset)
            for event in page["events"]:
                frame = f"id: {event['offset']}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"
                await send({"type": "http.response.body", "body": frame.encode(), "more_body": True})
            offset = page["next_offset"]
            if page["done"]:
                break
            await asyncio.sleep(POLL_SECONDS)
    await send({"type": "http.response.body", "body": b""})


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


def with_streams(restate_app: Any) -> Any:
    """The endpoint's ASGI app: /streams/... here, everything else to the Restate services."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/streams/"):
            await streams_app(scope, receive, send)
        else:
            await restate_app(scope, receive, send)

    return app
