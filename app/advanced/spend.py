"""Spend under control: a token budget per tenant, checked before each LLM call, exact after it.

A request names its tenant in a header (`x-tenant: acme`; none: `default`), and the tenant follows
the run into everything it starts: sub-agents, remote agents, workers (app/runtime/tenants.py).
`Spend/<tenant>` holds the tenant's budget, what it used, and what runs in flight have reserved:

    curl localhost:8080/Spend/acme/set_budget --json '{"max_tokens": 300}'
    curl localhost:8080/WeatherAgent/run -H 'x-tenant: acme' --json '{"message": "What is the weather like in Tokyo?"}'
    curl localhost:8080/WeatherAgent/run -H 'x-tenant: acme' --json '{"message": "What is the weather like in Oslo?"}'
        -> HTTP 402: Tenant 'acme' has no budget left for another run: used 267 of 300 tokens ...
    curl localhost:8080/Spend/acme/get

How a run keeps within it, at the price of one call per run:
- before its first LLM call it reserves an allowance (`reserve`: one journaled call): what one of
  the tenant's runs takes, on average; for a tenant that has run nothing yet, the whole budget;
  a tenant without a budget answers `unlimited`, and the run asks no more. A request that names
  no tenant (`default`) reserves nothing: the tour runs as it is, its use counted, never limited;
- before each next call it checks what is left of its allowance, locally: it goes on while that
  covers the largest call the tenant has made (`call_max`), and reserves more when not;
- Spend grants only what the budget has left, and nothing once that is less than one call: a run
  refused ends before its LLM call, with HTTP 402 naming the tenant, the budget and the use;
- when the run ends, the cost ledger's entry (app/advanced/llm_usage.py, one journaled send, with
  an idempotency key) settles it here: the tokens its calls used, counted once, and its
  reservation released. A replay, a retry or a restart counts nothing twice: each journaled
  answer names the invocation that made it, and only a run's own calls are its use.

So a tenant spends at most its budget, plus the error of the estimate: one call larger than any
before it, or, for a tenant's very first run, the call that crosses the budget. Trade-offs:
docs/beyond-the-tour.md ("Spend under control").
"""

from datetime import timedelta
from typing import Any, ClassVar

import restate
from pydantic import Field
from restate import TerminalError

from app.runtime.request_models import RequestModel
from app.runtime.tenants import DEFAULT_TENANT, tenant_of
from app.runtime.usage import UsageTally
from app.utils.prices import PRICES, cost

# A run refused for its tenant's budget: 402 Payment Required (a 4xx: not retried, the caller's to fix).
OVER_BUDGET = 402

# Its journals are not kept: a reservation or a settlement is never rerun (docs/control.md).
spend = restate.VirtualObject("Spend", journal_retention=timedelta(0))


class Budget(RequestModel):
    """A tenant's budget: tokens, a cost in USD (priced from the ledger's table), or both; neither:
    no limit."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"max_tokens": 300},
        {"max_tokens": 100000, "max_cost_usd": 0.5},
    ]

    max_tokens: int | None = Field(default=None, ge=0, le=10**12, description="Tokens (prompt + answer).")
    max_cost_usd: float | None = Field(
        default=None, ge=0, le=10**9, description="USD, at the ledger's prices."
    )


class Want(RequestModel):
    """What a run asks for: `tokens` more, or 0 for an allowance the size of one of the tenant's runs."""

    tokens: int = Field(default=0, ge=0, le=10**12)


class Release(RequestModel):
    """A reservation to release by hand: its id, as `get` lists it under `runs_in_flight`."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"grant": "inv_1aZ8bT5a9xSEw3G0VDaHCLwSA7JwTWSoyl"}]

    grant: str = Field(min_length=1, max_length=100)


class Settlement(RequestModel):
    """A finished run's use (per model, as the cost ledger has it) and the reservations it releases."""

    models: dict[str, dict[str, int]] = Field(default_factory=dict, max_length=100)
    grants: list[str] = Field(default_factory=list, max_length=1000)
    max_call_tokens: int = Field(default=0, ge=0)


def _empty_use() -> dict[str, Any]:
    return {"tokens": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "calls": 0, "runs": 0}


async def _state(restate_context: restate.ObjectSharedContext | restate.ObjectContext) -> dict[str, Any]:
    return {
        "budget": await restate_context.get("budget", type_hint=dict),
        "used": await restate_context.get("used", type_hint=dict) or _empty_use(),
        "grants": await restate_context.get("grants", type_hint=dict) or {},
        "call_max": await restate_context.get("call_max", type_hint=int) or 0,
    }


def _reserved(state: dict[str, Any]) -> int:
    """Tokens reserved by the runs in flight."""
    return sum(g["tokens"] for g in state["grants"].values())


def _left(state: dict[str, Any]) -> int | None:
    """Tokens the budget has left for new reservations (None: no budget). A cost budget counts in
    tokens at the dearest price of the table: never more than it allows."""
    budget, used = state["budget"], state["used"]
    if not budget or (budget.get("max_tokens") is None and budget.get("max_cost_usd") is None):
        return None
    reserved = _reserved(state)
    left = []
    if budget.get("max_tokens") is not None:
        left.append(budget["max_tokens"] - used["tokens"] - reserved)
    if budget.get("max_cost_usd") is not None:
        dearest = max(max(p["input"], p["output"]) for p in PRICES.values()) / 1e6
        left.append(int((budget["max_cost_usd"] - used["cost_usd"]) / dearest) - reserved)
    return min(left)


def _over(tenant: str, state: dict[str, Any]) -> str:
    budget, used = state["budget"], state["used"]
    limits = []
    if budget.get("max_tokens") is not None:
        limits.append(f"used {used['tokens']} of {budget['max_tokens']} tokens")
    if budget.get("max_cost_usd") is not None:
        limits.append(f"{used['cost_usd']:.6f} of {budget['max_cost_usd']} USD")
    spent = (_left({**state, "grants": {}}) or 0) <= 0
    what = "is over its budget" if spent else "has no budget left for another run"
    return (
        f"Tenant {tenant!r} {what}: {', '.join(limits)}; {_reserved(state)} tokens reserved by "
        f"{len(state['grants'])} run(s) in flight, and one call takes up to {state['call_max']}."
    )


@spend.handler()
async def set_budget(restate_context: restate.ObjectContext, budget: Budget) -> dict[str, Any]:
    if restate_context.key() == DEFAULT_TENANT:
        raise TerminalError(
            f"Invalid request: the tenant {DEFAULT_TENANT!r} (requests without x-tenant) has no budget: "
            "name the tenant of the requests to limit with the x-tenant header",
            400,
        )
    restate_context.set("budget", budget.model_dump())
    return await _view(restate_context)


@spend.handler(ingress_private=True)
async def reserve(restate_context: restate.ObjectContext, want: Want) -> dict[str, Any]:
    """An allowance for a run, or its refusal: `{"grant", "tokens", "call_max", "unlimited", "refused"}`."""
    state = await _state(restate_context)
    grant = restate_context.request().id  # this invocation's id names the reservation
    answer: dict[str, Any] = {"grant": grant, "tokens": 0, "call_max": state["call_max"], "unlimited": False}
    left = _left(state)
    if left is None:
        return {**answer, "unlimited": True}
    call_max = state["call_max"]
    if call_max == 0:
        # A tenant's first run: nothing is known of its calls. It may have all that is left, alone.
        tokens = left if left > 0 and not state["grants"] else 0
    else:
        tokens = min(want.tokens or _typical_run(state), left) if left >= call_max else 0
    if tokens <= 0:
        return {**answer, "refused": _over(restate_context.key(), state)}
    state["grants"][grant] = {"tokens": tokens}
    restate_context.set("grants", state["grants"])
    return {**answer, "tokens": tokens}


def _typical_run(state: dict[str, Any]) -> int:
    used = state["used"]
    return max(state["call_max"], round(used["tokens"] / used["runs"]) if used["runs"] else 0)


@spend.handler(ingress_private=True)
async def settle(restate_context: restate.ObjectContext, run: Settlement) -> None:
    state = await _state(restate_context)
    used = state["used"]
    for model, spent in run.models.items():
        used["input_tokens"] += spent.get("input_tokens", 0)
        used["output_tokens"] += spent.get("output_tokens", 0)
        used["tokens"] += spent.get("input_tokens", 0) + spent.get("output_tokens", 0)
        used["calls"] += spent.get("calls", 0)
        used["cost_usd"] = round(used["cost_usd"] + (cost(spent, PRICES.get(model)) or 0.0), 6)
    used["runs"] += 1
    restate_context.set("used", used)
    if run.max_call_tokens > state["call_max"]:
        restate_context.set("call_max", run.max_call_tokens)
    # A reservation settled before (a run restarted from a copy of another's journal holds its
    # grants too) is gone already: releasing it again does nothing.
    grants = {g: v for g, v in state["grants"].items() if g not in run.grants}
    if len(grants) != len(state["grants"]):
        restate_context.set("grants", grants)


@spend.handler()
async def release(restate_context: restate.ObjectContext, release: Release) -> dict[str, Any]:
    """Release a reservation by hand: a killed run never settles its own."""
    grants = await restate_context.get("grants", type_hint=dict) or {}
    if grants.pop(release.grant, None) is None:
        raise TerminalError(
            f"no reservation {release.grant[:60]!r} for tenant {restate_context.key()!r}", 404
        )
    restate_context.set("grants", grants)
    return await _view(restate_context)


@spend.handler(kind="shared")
async def get(restate_context: restate.ObjectSharedContext) -> dict[str, Any]:
    return await _view(restate_context)


async def _view(restate_context: restate.ObjectSharedContext | restate.ObjectContext) -> dict[str, Any]:
    state = await _state(restate_context)
    left = _left(state)
    return {
        "tenant": restate_context.key(),
        "budget": state["budget"],
        "used": state["used"],
        "reserved": _reserved(state),
        "runs_in_flight": [{"grant": g, **v} for g, v in state["grants"].items()],
        "left": None if left is None else max(0, left),
        "call_max": state["call_max"],
    }


# --- before each LLM call, in the run that makes it ---------------------------------------------------


async def before_llm_call(restate_context: restate.Context, tally: UsageTally) -> None:
    """Make sure the run may make its next LLM call: within what it reserved, or reserve more (one
    journaled call), or end the run with a 402 before the call."""
    allowance = tally.allowance
    if allowance.unlimited:
        return
    tenant = tenant_of(restate_context)
    if tenant == DEFAULT_TENANT:
        # A request that names no tenant: the tour as it is, counted but never limited, no call.
        allowance.unlimited = True
        return
    left = allowance.tokens - tally.tokens()
    if allowance.grants and (left >= allowance.call_max > 0 or (allowance.call_max == 0 and left > 0)):
        return
    want = Want(tokens=0 if not allowance.grants else max(allowance.call_max - left, 1))
    answer = await restate_context.object_call(reserve, key=tenant, arg=want)
    allowance.call_max = answer["call_max"]
    if answer["unlimited"]:
        allowance.unlimited = True
        return
    if answer.get("refused"):
        raise TerminalError(answer["refused"], OVER_BUDGET)
    allowance.grants.append(answer["grant"])
    allowance.tokens += answer["tokens"]
