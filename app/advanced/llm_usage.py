"""An exactly-once cost ledger: every LLM call of every agent, counted once, priced.

The Virtual Object `LlmUsage` keeps the tokens spent per model, under the name of the service
that made the calls (`LlmUsage/WeatherAgent`) and, for Virtual Objects and workflows, under
`service/key` too (`LlmUsage/Chat%2Falice`: the `/` of the key is written %2F in a URL).

Recording is a journaled one-way call (`restate_context.object_send`) made right after each journaled LLM
call: by `run_agent` (app/utils/agent_runs.py) for every agent, from the Agents SDK's
`on_llm_end` hook, and by the manual loop after its `LLM call` step. The numbers come from the
journaled response (its `usage`), so:

- a replay (after a crash, a suspension or a retried attempt) makes the same send again, and
  Restate recognises it as the one already in the journal: counted once;
- a call that was made is recorded as soon as its answer is journaled, even if the invocation
  crashes right after: the send is part of the journal, and the ledger's own invocation runs on
  its own.

An answer the API delivered but the agent refuses (cut off at the token limit, withheld by the
content filter: see `check_answer` in app/utils/llm.py) ends the invocation with a terminal
error, and is billed all the same. Its usage travels in the error's metadata, which Restate
journals with the failure; `run_agent` and the manual loop record it from there, as a call and as
a `failed_calls`, exactly once like any other.

The limit: an LLM request whose answer never reached the journal (a timeout, a connection cut by
a crash, an error after the API did the work) is not counted, though the API may bill it. No
hook sees it, and its usage is unknown anyway.

Cost is computed when the ledger is read, from the price table LLM_PRICES (JSON, USD per million
tokens; default below, OpenAI's list prices for the models the tour uses): change the table and
the totals are priced anew. A model without a price counts tokens, and is listed in `unpriced`.

    curl localhost:8080/WeatherAgent/run --json '{"message": "What is the weather like in San Francisco?"}'
    curl localhost:8080/LlmUsage/WeatherAgent/get
        -> {"calls": 2, "failed_calls": 0, "input_tokens": 157, "output_tokens": 124, "cost_usd": 0.001306,
            "models": {"gpt-4.1": {"calls": 2, "failed_calls": 0, "input_tokens": 157, "output_tokens": 124,
                                   "cost_usd": 0.001306}},
            "unpriced": []}
    (after that one run, with the offline model)

`record` is ingress-private: only the agents' invocations write to the ledger.
"""

import json
import os
from typing import Any, ClassVar, NoReturn

import restate
from pydantic import Field
from restate.server_context import ServerInvocationContext

from app.utils.contract import RequestModel, ShortText
from app.utils.llm import billed_usage

# USD per million tokens.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4.1": {"input": 2.0, "output": 8.0},
    "gpt-4.1-mini": {"input": 0.4, "output": 1.6},
    "gpt-4.1-nano": {"input": 0.1, "output": 0.4},
    "gpt-4o": {"input": 2.5, "output": 10.0},
    "gpt-4o-mini": {"input": 0.15, "output": 0.6},
}


def price_table() -> dict[str, dict[str, float]]:
    """LLM_PRICES if set (e.g. '{"gpt-4.1": {"input": 2.0, "output": 8.0}}'), else DEFAULT_PRICES."""
    raw = os.environ.get("LLM_PRICES")
    if not raw:
        return DEFAULT_PRICES
    try:
        table = json.loads(raw)
        return {
            str(model): {"input": float(p["input"]), "output": float(p["output"])}
            for model, p in table.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(
            f'LLM_PRICES must be JSON like {{"gpt-4.1": {{"input": 2.0, "output": 8.0}}}} ({e})'
        ) from e


PRICES = price_table()  # read once, at start: a bad table stops the endpoint with the message above

llm_usage = restate.VirtualObject("LlmUsage")


class LlmCall(RequestModel):
    """One LLM call, as its journaled response reported it."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"model": "gpt-4.1", "input_tokens": 120, "output_tokens": 30}
    ]

    model: ShortText = Field(description="The model that was asked, e.g. gpt-4.1.")
    input_tokens: int = Field(ge=0, description="Tokens of the prompt.")
    output_tokens: int = Field(ge=0, description="Tokens of the answer.")
    failed: bool = Field(default=False, description="Billed, but the answer was refused (cut off).")


@llm_usage.handler(ingress_private=True)
async def record(restate_context: restate.ObjectContext, call: LlmCall) -> None:
    models: dict[str, dict[str, int]] = await restate_context.get("models", type_hint=dict) or {}
    totals = models.setdefault(call.model, {"calls": 0, "input_tokens": 0, "output_tokens": 0})
    totals["calls"] += 1
    totals["failed_calls"] = totals.get("failed_calls", 0) + int(call.failed)
    totals["input_tokens"] += call.input_tokens
    totals["output_tokens"] += call.output_tokens
    restate_context.set("models", models)


def cost(totals: dict[str, int], price: dict[str, float] | None) -> float | None:
    if price is None:
        return None
    return round(
        (totals["input_tokens"] * price["input"] + totals["output_tokens"] * price["output"]) / 1e6, 6
    )


@llm_usage.handler(kind="shared")
async def get(restate_context: restate.ObjectSharedContext) -> dict[str, Any]:
    models: dict[str, dict[str, int]] = await restate_context.get("models", type_hint=dict) or {}
    priced = {
        name: {"failed_calls": 0, **totals, "cost_usd": cost(totals, PRICES.get(name))}
        for name, totals in models.items()
    }
    return {
        "calls": sum(t["calls"] for t in models.values()),
        "failed_calls": sum(t.get("failed_calls", 0) for t in models.values()),
        "input_tokens": sum(t["input_tokens"] for t in models.values()),
        "output_tokens": sum(t["output_tokens"] for t in models.values()),
        "cost_usd": round(sum(p["cost_usd"] or 0.0 for p in priced.values()), 6),
        "models": priced,
        "unpriced": sorted(name for name, p in priced.items() if p["cost_usd"] is None),
    }


# --- recording, from the invocation that made the call --------------------------------------------


def ledger_keys(restate_context: restate.Context) -> list[str]:
    """`[service]`, or `[service, service/key]` for a Virtual Object or a workflow."""
    if not isinstance(restate_context, ServerInvocationContext):
        raise TypeError(f"not the context of a running invocation: {type(restate_context).__name__}")
    service = restate_context.handler.service_tag  # the handler this invocation runs
    return (
        [service.name]
        if service.kind == "service"
        else [service.name, f"{service.name}/{restate_context.key()}"]
    )


def record_llm_call(
    restate_context: restate.Context,
    model: str,
    input_tokens: int,
    output_tokens: int,
    failed: bool = False,
) -> None:
    """Count one journaled LLM call: a journaled one-way send per ledger key, made once per call."""
    call = LlmCall(model=model, input_tokens=input_tokens, output_tokens=output_tokens, failed=failed)
    for key in ledger_keys(restate_context):
        restate_context.object_send(record, key=key, arg=call)


def reraise_counting_bill(restate_context: restate.Context, error: restate.TerminalError) -> NoReturn:
    """Raise on the terminal error an LLM step failed with, after counting the refused answer it
    carries if the API billed it (see the docstring); then without the bill, so that no caller
    (another agent run, a calling service) counts it again."""
    if (billed := billed_usage(error)) is None:
        raise error
    record_llm_call(restate_context, *billed, failed=True)
    raise restate.TerminalError(error.message, error.status_code) from error
