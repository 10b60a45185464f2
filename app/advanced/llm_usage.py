"""An exactly-once cost ledger: every LLM call of every agent, counted once, priced when read.

`LlmUsage` keeps the tokens spent per model under the name of the service that made the calls
(`LlmUsage/WeatherAgent`) and, for Virtual Objects and workflows, under `service/key` too
(`LlmUsage/Chat%2Falice`). Every agent run sends its tally here once, when it ends: one journaled
one-way call, made by the endpoint's agent runner (app/runtime/agent_runs.py) and by the manual
loop. How a crash, a replay or a cut-off answer is counted: docs/beyond-the-tour.md.

    curl localhost:8080/WeatherAgent/run --json '{"message": "What is the weather like in San Francisco?"}'
    curl localhost:8080/LlmUsage/WeatherAgent/get
        -> {"calls": 2, "failed_calls": 0, "input_tokens": 157, "output_tokens": 124, "cost_usd": 0.001306, ...}

`record` is ingress-private: only the agents' invocations write to the ledger. Each run's entry
has an idempotency key (the invocation that made its calls, and the run's number in it): a run
restarted from a copy of another's journal (docs/control.md) can never enter the same calls twice.
"""

from datetime import timedelta
from typing import Any, ClassVar

import restate
from pydantic import Field
from restate.server_context import ServerInvocationContext

from app.runtime.request_models import RequestModel, ShortText
from app.runtime.settings import JOURNAL_RETENTION
from app.runtime.tenants import tenant_of
from app.runtime.usage import UsageTally
from app.utils.prices import PRICES, cost

# Its own journals are not kept: a ledger entry is never rerun (docs/control.md).
llm_usage = restate.VirtualObject("LlmUsage", journal_retention=timedelta(0))


class ModelCalls(RequestModel):
    """The LLM calls of one model, as their journaled responses reported them."""

    calls: int = Field(ge=0, description="Calls answered, including billed but refused ones.")
    failed_calls: int = Field(default=0, ge=0, description="Billed, but the answer was refused (cut off).")
    input_tokens: int = Field(ge=0, description="Tokens of the prompts.")
    output_tokens: int = Field(ge=0, description="Tokens of the answers.")


class RunUsage(RequestModel):
    """What one agent run spent, per model; `key`: the calling object's key, counted there too;
    `tenant`: whose budget it spent (app/advanced/spend.py), with the reservations it releases."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"models": {"gpt-4.1": {"calls": 2, "input_tokens": 157, "output_tokens": 124}}}
    ]

    models: dict[ShortText, ModelCalls] = Field(max_length=100)
    key: str | None = Field(default=None, max_length=1000)
    tenant: str | None = Field(default=None, max_length=36)
    grants: list[ShortText] = Field(default_factory=list, max_length=1000)
    max_call_tokens: int = Field(default=0, ge=0)


# A run restarted within JOURNAL_RETENTION may send an entry again: its key is kept as long.
@llm_usage.handler(ingress_private=True, idempotency_retention=JOURNAL_RETENTION)
async def record(restate_context: restate.ObjectContext, usage: RunUsage) -> None:
    models: dict[str, dict[str, int]] = await restate_context.get("models", type_hint=dict) or {}
    for name, spent in usage.models.items():
        totals = models.setdefault(name, {"calls": 0, "input_tokens": 0, "output_tokens": 0})
        totals["calls"] += spent.calls
        totals["failed_calls"] = totals.get("failed_calls", 0) + spent.failed_calls
        totals["input_tokens"] += spent.input_tokens
        totals["output_tokens"] += spent.output_tokens
    restate_context.set("models", models)
    if usage.key is not None:
        # Under `service/key` too: sent from here, so the agent's journal holds one entry per run.
        per_key = RunUsage(models=usage.models)
        restate_context.object_send(record, key=f"{restate_context.key()}/{usage.key}", arg=per_key)
    if usage.tenant is not None:
        # And settled with the tenant's budget (app/advanced/spend.py), from here too.
        settlement = usage.model_dump_json(include={"models", "grants", "max_call_tokens"}).encode()
        restate_context.generic_send("Spend", "settle", settlement, key=usage.tenant)


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


# --- recording, from the invocation that made the calls ---------------------------------------------


def record_usage(restate_context: restate.Context, tally: UsageTally) -> None:
    """Send a finished run's tally to the ledger: one journaled one-way call, made once per run
    (none for a run that made no LLM call).

    Its idempotency key names who made the calls and which run of the invocation this is: the
    same on every replay, and the same in a copy of the journal. A run restarted from between its
    last LLM call and this entry makes the entry again, with the calls of the invocation it was
    copied from: Restate drops it, as that one already made it."""
    usage = tally.models
    if not usage and not tally.allowance.grants:
        return
    if not isinstance(restate_context, ServerInvocationContext):
        raise TypeError(f"not the context of a running invocation: {type(restate_context).__name__}")
    runs = restate_context.extension_data.get("ledger_runs", 0) + 1
    restate_context.extension_data["ledger_runs"] = runs
    service = restate_context.handler.service_tag  # the handler this invocation runs
    key = None if service.kind == "service" else restate_context.key()
    models = {name: ModelCalls(**totals) for name, totals in usage.items()}
    spent = RunUsage(
        models=models,
        key=key,
        tenant=tenant_of(restate_context),
        grants=tally.allowance.grants,
        max_call_tokens=tally.max_call_tokens(),
    )
    maker = tally.latest_maker or restate_context.request().id  # (no answer: it reserved, and made none)
    restate_context.object_send(record, key=service.name, arg=spent, idempotency_key=f"{maker}/{runs}")
