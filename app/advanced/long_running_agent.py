"""A long-running agent: checks a city's weather on a schedule, with a durable log.

`ScheduledAgent` is a Virtual Object, one per watch (the key). `start` schedules the first `check`;
each `check` runs the WeatherAgent, appends its report to the object's log, and schedules the
next `check` with a delayed durable send. The schedule lives in Restate, not in a process: the
endpoint can crash or be redeployed and the server restarted, and the checks go on.

- No drift: each check is planned at start + n × interval, and the next delay is computed from
  that plan, not from when the previous check happened to finish.
- No doubling: one chain of checks per watch. `start` on a running watch changes nothing; a check
  from an earlier start (stopped since) sees a stale generation and ends without rescheduling.

    curl localhost:8080/ScheduledAgent/sf/start --json '{"city": "San Francisco", "interval_seconds": 10}'
    curl localhost:8080/ScheduledAgent/sf/status
    curl -X POST localhost:8080/ScheduledAgent/sf/stop
"""

from datetime import timedelta
from typing import Any

import restate
from pydantic import BaseModel, Field

from app.durable_agent import weather_agent
from app.utils.agent_runs import run_agent

LOG_LENGTH = 50  # the most recent reports kept in state


class WatchRequest(BaseModel):
    city: str = Field(default="San Francisco", min_length=1)
    interval_seconds: float = Field(default=60, ge=1, description="Seconds between two checks.")


class Tick(BaseModel):
    generation: int  # which start() this check belongs to
    seq: int  # 1 for the first check of a generation
    planned_at: float  # when this check was due (seconds since the epoch)


scheduled_agent = restate.VirtualObject("ScheduledAgent")


def schedule(ctx: restate.ObjectContext, tick: Tick, delay: float) -> None:
    ctx.object_send(check, key=ctx.key(), arg=tick, send_delay=timedelta(seconds=max(0.0, delay)))


@scheduled_agent.handler()
async def start(ctx: restate.ObjectContext, req: WatchRequest) -> dict[str, Any]:
    if await ctx.get("active", type_hint=bool):
        return await describe(ctx)  # already watching: one chain of checks, not two
    generation = (await ctx.get("generation", type_hint=int) or 0) + 1
    ctx.set("generation", generation)
    ctx.set("active", True)
    ctx.set("config", req.model_dump())
    now = await ctx.time()
    schedule(ctx, Tick(generation=generation, seq=1, planned_at=now), delay=0)
    return await describe(ctx)


@scheduled_agent.handler()
async def check(ctx: restate.ObjectContext, tick: Tick) -> None:
    if not await ctx.get("active", type_hint=bool) or tick.generation != await ctx.get(
        "generation", type_hint=int
    ):
        return  # stopped, or left over from an earlier start: end the chain here
    config = WatchRequest.model_validate(await ctx.get("config", type_hint=dict))

    result = await run_agent(weather_agent, f"What is the weather like in {config.city}?", context=ctx)
    log: list[dict[str, Any]] = await ctx.get("log", type_hint=list) or []
    log.append({"seq": tick.seq, "planned_at": tick.planned_at, "report": str(result.final_output)})
    ctx.set("log", log[-LOG_LENGTH:])
    ctx.set("checks", tick.seq)

    # Plan from the schedule, not from the clock: a slow check does not push the next ones later.
    next_tick = Tick(
        generation=tick.generation, seq=tick.seq + 1, planned_at=tick.planned_at + config.interval_seconds
    )
    schedule(ctx, next_tick, delay=next_tick.planned_at - await ctx.time())


@scheduled_agent.handler()
async def stop(ctx: restate.ObjectContext) -> dict[str, Any]:
    # The check already scheduled still runs once, sees `active` false, and ends the chain.
    ctx.set("active", False)
    return await describe(ctx)


@scheduled_agent.handler(kind="shared")
async def status(ctx: restate.ObjectSharedContext) -> dict[str, Any]:
    return await describe(ctx)


async def describe(ctx: restate.ObjectSharedContext | restate.ObjectContext) -> dict[str, Any]:
    return {
        "active": bool(await ctx.get("active", type_hint=bool)),
        "config": await ctx.get("config", type_hint=dict),
        "checks": await ctx.get("checks", type_hint=int) or 0,
        "log": (await ctx.get("log", type_hint=list) or [])[-10:],
    }
