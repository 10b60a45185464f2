"""The real small model (dev/local_model.py), one request at a time: the durable WeatherAgent
against the plain Agents SDK, both on the same llama.cpp server and its real latency.

    python -m bench --only local_model

The model is slow (seconds per call) and unscripted: it may call the weather tool or not, so each
kind's LLM calls per run are recorded beside its time. Figures: `local_model.{plain_ms,
durable_ms, ratio}` (medians), and the runs behind them.
"""

import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
from openai import AsyncOpenAI

from dev.harness import LocalModelTour

QUESTION = "What is the weather like in San Francisco?"


def plain_agent(model_url: str, model: str, weather_url: str) -> Agent[Any]:
    """The WeatherAgent without Restate, on the same server, with the same tool (bench/plain_agent.py)
    on the same weather API."""
    from app.utils import weather
    from bench.plain_agent import get_weather

    weather.WEATHER_API_URL = weather_url  # read when the tool calls it
    client = AsyncOpenAI(base_url=model_url, api_key="local-model", max_retries=0)
    return Agent(
        name="WeatherAgent",
        instructions="You are a helpful agent that provides weather updates.",
        tools=[get_weather],
        model=OpenAIChatCompletionsModel(model=model, openai_client=client),
    )


async def measure(stack: LocalModelTour, runs: int) -> dict[str, Any]:
    set_tracing_disabled(True)
    agent = plain_agent(stack.model.url, stack.model_alias, f"{stack.llm.url}/wttr")
    samples: dict[str, list[dict[str, float]]] = {"plain": [], "durable": []}
    async with httpx.AsyncClient(base_url=stack.ingress, timeout=600) as ingress:
        for _ in range(runs):  # taking turns: the machine's load weighs on both alike
            for kind in ("plain", "durable"):
                before, started = stack.model.chat_completions, time.perf_counter()
                if kind == "plain":
                    await Runner.run(agent, QUESTION)
                else:
                    resp = await ingress.post("/WeatherAgent/run", json={"message": QUESTION})
                    assert resp.status_code < 500 or "message" in resp.json(), resp.text
                elapsed = time.perf_counter() - started
                samples[kind].append(
                    {"ms": round(elapsed * 1000, 1), "llm_calls": stack.model.chat_completions - before}
                )
    plain = statistics.median(s["ms"] for s in samples["plain"])
    durable = statistics.median(s["ms"] for s in samples["durable"])

    def per_call(kind: str) -> float:
        return round(
            sum(s["ms"] for s in samples[kind]) / max(1, sum(s["llm_calls"] for s in samples[kind])), 1
        )

    return {
        "plain_ms": round(plain, 1),
        "durable_ms": round(durable, 1),
        "ratio": round(durable / plain, 2),
        # The model decides how many calls a run makes: time per LLM call compares them too.
        "ms_per_llm_call": {"plain": per_call("plain"), "durable": per_call("durable")},
        "runs": samples,
        "model": stack.model_alias,
    }


def run(workdir: Path, quick: bool) -> dict[str, Any]:
    import asyncio

    # The proxy makes llama.cpp's tool calling work (dev/local_model.py); the model's words are its own.
    stack = LocalModelTour(workdir, adapt=True)
    stack.start()
    try:
        return asyncio.run(measure(stack, 3 if quick else 8))
    finally:
        stack.stop()


def report(figures: dict[str, Any]) -> None:
    calls = {k: [s["llm_calls"] for s in v] for k, v in figures["runs"].items()}
    print(
        f"local model {figures['model']}: plain {figures['plain_ms']} ms, durable {figures['durable_ms']} ms "
        f"(median, {figures['ratio']}x); LLM calls per run {calls}",
        flush=True,
    )
