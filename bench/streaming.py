"""Time to first token: the StreamingAgent's durable stream vs the plain Agents SDK streaming the
same answer in-process, in the same run, against the same stand-in at the same token pace.

    python -m bench --only streaming

- plain: `Runner.run_streamed` of the same agent (the weather tool, the same model) in this
  process; from the start of the run to its first `response.output_text.delta`.
- durable: `POST /StreamingAgent/run/send` through the ingress, then the public web process's
  `/streams/<id>` (SSE) read as a browser would; from the POST to the first `text_delta` event.
  The endpoint sends the text live to the web process too (app/web/live.py), which passes it on
  at once; the topic's copy (`AgentEvents/<id>/next`, pushed, not polled) comes behind it.

Both include the first LLM call (the tool call, streamed too), the weather lookup and the second
call up to its first word. Runs take turns (plain, durable, plain, ...), so the machine's load
weighs on both alike. Figures are medians (p95) in ms.
"""

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
from agents import Runner, set_default_openai_client, set_tracing_disabled
from openai import AsyncOpenAI

from bench.common import summary
from dev.harness import Tour

QUESTION = "What is the weather like in Tokyo?"
TOKEN_MS = 20  # the stand-in's pace between two deltas, for both


async def plain_first_token() -> tuple[float, float]:
    """(start, first text delta) of a plain streamed run, perf_counter() seconds; then drained."""
    from bench.plain_agent import plain_weather_agent

    started = time.perf_counter()
    first: float | None = None
    result = Runner.run_streamed(plain_weather_agent, QUESTION)
    async for event in result.stream_events():
        if (
            first is None
            and event.type == "raw_response_event"
            and event.data.type == "response.output_text.delta"
        ):
            first = time.perf_counter()
    if first is None or not result.final_output:
        raise RuntimeError(f"the plain streamed run wrote no text: {result.final_output!r}")
    return started, first


async def durable_first_token(ingress: httpx.AsyncClient, web: httpx.AsyncClient) -> tuple[float, float]:
    """(POST of a StreamingAgent run, its first text_delta on /streams/<id>), perf_counter() seconds."""
    started = time.perf_counter()
    resp = await ingress.post("/StreamingAgent/run/send", json={"message": QUESTION})
    resp.raise_for_status()
    run_id = resp.json()["invocationId"]
    first: float | None = None
    async with web.stream("GET", f"/streams/{run_id}") as stream:
        async for line in stream.aiter_lines():
            if first is None and line == "event: text_delta":
                first = time.perf_counter()
            if line == "event: error":
                raise RuntimeError(f"the StreamingAgent run {run_id} failed")
            if line == "event: done":
                break
    if first is None:
        raise RuntimeError(f"the StreamingAgent run {run_id} streamed no text")
    return started, first


class StandIn:
    """The stand-in's log, read on this process's clock: it logs times in seconds since its last
    reset, which `fresh()` does right before each run (one kept-alive connection: ~1 ms)."""

    def __init__(self, stack: Tour) -> None:
        self.http = httpx.Client(base_url=stack.llm.url, timeout=10)
        self.zero = 0.0
        self.uncertainty = 0.0  # the largest half-duration of a reset call seen

    def fresh(self) -> None:
        before = time.perf_counter()
        self.http.post("/_stub/reset").raise_for_status()
        after = time.perf_counter()
        self.zero = (before + after) / 2
        self.uncertainty = max(self.uncertainty, (after - before) / 2)
        # reset() restored the start pace
        self.http.post("/_stub/latency", json={"token_ms": TOKEN_MS}).raise_for_status()

    def model_first_word(self) -> float:
        """When the run's answer (the stand-in's call that wrote text) sent its first word."""
        calls = self.http.get("/_stub/stats").json()["calls"]
        answers = [c for c in calls if c.get("reply") == "text" and "first_delta" in c]
        if len(answers) != 1:
            raise RuntimeError(f"expected one answer call, the stand-in logged {answers}")
        return self.zero + float(answers[0]["first_delta"])


Samples = dict[str, dict[str, list[float]]]


async def _measure(stack: Tour, runs: int, warmup: int, stand_in: StandIn) -> Samples:
    """first_token: start to the reader's first word; model: start to the model's first word."""
    samples: Samples = {"first_token": {}, "model": {}}

    def keep(i: int, name: str, started: float, first: float) -> None:
        if i >= warmup:
            samples["first_token"].setdefault(name, []).append(first - started)
            samples["model"].setdefault(name, []).append(stand_in.model_first_word() - started)

    set_tracing_disabled(True)
    # As bench/plain_agent.py: the OpenAI client with its own retries, as a plain agent has them.
    set_default_openai_client(
        AsyncOpenAI(base_url=f"{stack.llm.url}/v1", api_key="offline-stand-in", max_retries=2)
    )
    async with (
        httpx.AsyncClient(base_url=stack.ingress, timeout=60) as ingress,
        httpx.AsyncClient(base_url=stack.web_url, timeout=60) as web,
    ):
        for i in range(warmup + runs):
            stand_in.fresh()
            keep(i, "plain", *await plain_first_token())
            stand_in.fresh()
            keep(i, "durable", *await durable_first_token(ingress, web))
    return samples


def measure(stack: Tour, quick: bool) -> dict[str, Any]:
    runs, warmup = (3, 1) if quick else (8, 1)
    # The plain agent's weather tool reads the same stand-in.
    os.environ["WEATHER_API_URL"] = f"{stack.llm.url}/wttr"
    stand_in = StandIn(stack)
    try:
        samples = asyncio.run(_measure(stack, runs, warmup, stand_in))
    finally:
        stand_in.http.close()
        stack.llm.reset()
    first = {name: summary(values) for name, values in samples["first_token"].items()}
    model = {name: summary(values) for name, values in samples["model"].items()}
    # What the reader waits for after the model wrote the first word: the way to the reader.
    delivery = {
        name: summary(
            [t - m for t, m in zip(samples["first_token"][name], samples["model"][name], strict=True)]
        )
        for name in first
    }
    return {
        "first_token_ms": first,
        "model_first_word_ms": model,
        "delivery_ms": delivery,
        "durable_minus_plain_ms": round(first["durable"]["median_ms"] - first["plain"]["median_ms"], 1),
        "token_ms": TOKEN_MS,
        "runs": runs,
        "stand_in_clock_uncertainty_ms": round(stand_in.uncertainty * 1000, 1),
        "delivery": "live",  # the text straight from the endpoint; the topic's copy behind it
    }


def report(figures: dict[str, Any]) -> None:
    print(f"time to first token, {figures['runs']} runs each, stand-in pace {figures['token_ms']} ms/token:")
    for name, s in figures["first_token_ms"].items():
        model, delivery = figures["model_first_word_ms"][name], figures["delivery_ms"][name]
        print(
            f"  {name:18} median {s['median_ms']:7.1f} ms   p95 {s['p95_ms']:7.1f} ms"
            f"   (model's first word at {model['median_ms']:.1f}, then {delivery['median_ms']:.1f} to the reader)"
        )


def run(workdir: Path, quick: bool) -> dict[str, Any]:
    stack = Tour(workdir)
    stack.start()
    try:
        return measure(stack, quick)
    finally:
        stack.stop()
