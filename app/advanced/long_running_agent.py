"""A long-running agent: checks a city's weather on a schedule, with a durable log.

`ScheduledAgent` is a Virtual Object, one per watch (the key). `start` schedules the first `check`;
each `check` runs the WeatherAgent, appends its report to the object's log, and schedules the next
with a delayed durable send: the schedule lives in Restate, not in a process. No drift (each check
is planned at start + n x interval), no burst after downtime (missed checks are skipped, the due
one runs once), no doubling (one chain per watch; `check` is ingress-private), and `stop` works
even while a check is stuck (docs/beyond-the-tour.md).

    curl localhost:8080/ScheduledAgent/sf/start --json '{"city": "San Francisco", "interval_seconds": 10}'
    curl localhost:8080/ScheduledAgent/sf/status
    curl -X POST localhost:8080/ScheduledAgent/sf/stop

In the UI, a `check` invocation every 10 seconds, each scheduled by the one before it.
"""

import math
from datetime import timedelta
from typing import Any, ClassVar

import restate
from pydantic import BaseModel, Field
from restate.ext.openai import DurableRunner

from app.durable_agent import weather_agent
from app.runtime.request_models import MAX_FIELD_CHARS, RequestModel
from app.runtime.settings import LLM_RETRY, MAX_TURNS

LOG_LENGTH = 50  # the most recent reports kept in state


class WatchRequest(RequestModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"city": "San Francisco", "interval_seconds": 10}]

    city: str = Field(default="San Francisco", min_length=1, max_length=MAX_FIELD_CHARS)
    interval_seconds: float = Field(
        default=60, ge=1, le=7 * 24 * 3600, allow_inf_nan=False, description="Seconds between two checks."
    )


class Tick(BaseModel):
    seq: int  # 1 for the first check of a watch
    planned_at: float  # when this check was due (seconds since the epoch)


scheduled_agent = restate.VirtualObject("ScheduledAgent")


async def schedule(restate_context: restate.ObjectContext, tick: Tick, delay: float) -> None:
    handle = restate_context.object_send(
        check, key=restate_context.key(), arg=tick, send_delay=timedelta(seconds=max(0.0, delay))
    )
    # The chain's token: only the check with this invocation id may run and schedule the next one.
    restate_context.set("next_check", await handle.invocation_id())


@scheduled_agent.handler()
async def start(restate_context: restate.ObjectContext, req: WatchRequest) -> dict[str, Any]:
    if await restate_context.get("active", type_hint=bool):
        return await describe(restate_context)  # already watching: one chain of checks, not two
    restate_context.set("active", True)
    restate_context.set("config", req.model_dump())
    first = Tick(
        seq=(await restate_context.get("checks", type_hint=int) or 0) + 1,
        planned_at=await restate_context.time(),
    )
    await schedule(restate_context, first, delay=0)
    return await describe(restate_context)


# Only the schedule calls `check`: it is ingress-private, so the ingress refuses it.
@scheduled_agent.handler(ingress_private=True)
async def check(restate_context: restate.ObjectContext, tick: Tick) -> None:
    if restate_context.request().id != await restate_context.get("next_check", type_hint=str):
        return  # not the check the chain waits for (stopped since, or a stray call): no second chain
    config = WatchRequest.model_validate(await restate_context.get("config", type_hint=dict))

    try:
        result = await DurableRunner.run(
            weather_agent,
            f"What is the weather like in {config.city}?",
            context=restate_context,
            run_options=LLM_RETRY,
            max_turns=MAX_TURNS,
        )
        report = str(result.final_output)
    except restate.TerminalError as e:
        if e.status_code == 409:
            raise  # cancelled by `stop`: the chain ends here
        # Failed for good (say, an unknown city): logged, and the watch goes on, still `active`.
        report = f"Check failed: {e.message}"
    now = await restate_context.time()
    log: list[dict[str, Any]] = await restate_context.get("log", type_hint=list) or []
    log.append({"seq": tick.seq, "planned_at": tick.planned_at, "done_at": now, "report": report})
    restate_context.set("log", log[-LOG_LENGTH:])
    restate_context.set("checks", tick.seq)

    # Plan from the schedule, not from the clock: a slow check does not push the next ones later.
    planned_at = tick.planned_at + config.interval_seconds
    if planned_at < now:
        # Late (the endpoint or the server was down): this check was the one catch-up. The missed
        # ones are skipped, not fired back to back; the next is the first future one of the plan.
        planned_at += math.ceil((now - planned_at) / config.interval_seconds) * config.interval_seconds
    await schedule(restate_context, Tick(seq=tick.seq + 1, planned_at=planned_at), delay=planned_at - now)


@scheduled_agent.handler(kind="shared")
async def stop(restate_context: restate.ObjectSharedContext) -> dict[str, Any]:
    # Shared, so not queued behind a check that is stuck (say, a weather API that keeps failing):
    # that check is cancelled, which frees the object for `end_watch`.
    if next_check := await restate_context.get("next_check", type_hint=str):
        restate_context.cancel_invocation(next_check)
    return await restate_context.object_call(end_watch, key=restate_context.key(), arg=None)


@scheduled_agent.handler(ingress_private=True)
async def end_watch(restate_context: restate.ObjectContext) -> dict[str, Any]:
    # A check may have scheduled the next one meanwhile: cancel that one too.
    if next_check := await restate_context.get("next_check", type_hint=str):
        restate_context.cancel_invocation(next_check)
    restate_context.clear("next_check")
    restate_context.set("active", False)
    return await describe(restate_context)


@scheduled_agent.handler(kind="shared")
async def status(restate_context: restate.ObjectSharedContext) -> dict[str, Any]:
    return await describe(restate_context)


async def describe(restate_context: restate.ObjectSharedContext | restate.ObjectContext) -> dict[str, Any]:
    return {
        "active": bool(await restate_context.get("active", type_hint=bool)),
        "config": await restate_context.get("config", type_hint=dict),
        "checks": await restate_context.get("checks", type_hint=int) or 0,
        "log": (await restate_context.get("log", type_hint=list) or [])[-10:],
    }
