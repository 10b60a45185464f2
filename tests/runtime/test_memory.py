"""The endpoint gives freed memory back when idle (app/runtime/memory.py): once all requests are
done for the idle time, not while one is in flight, and again after the next burst."""

import asyncio
from typing import Any

from app.runtime.memory import TrimWhenIdle


def test_the_heap_is_trimmed_once_the_requests_are_done_for_the_idle_time() -> None:
    trims: list[float] = []
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("path") == "/slow":
            await release.wait()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        middleware = TrimWhenIdle(app, idle=0.1)
        middleware.trim = lambda pad: trims.append(loop.time()) or 1
        http = {"type": "http", "path": "/"}
        slow = loop.create_task(middleware({"type": "http", "path": "/slow"}, None, None))
        await middleware(http, None, None)
        await asyncio.sleep(0.3)
        assert trims == []  # /slow is still in flight (an invocation that has not suspended)
        release.set()
        await slow
        done = loop.time()
        await asyncio.sleep(0.05)
        assert trims == []  # not before the idle time
        await asyncio.sleep(0.15)
        assert len(trims) == 1 and trims[0] - done >= 0.1
        await asyncio.sleep(0.3)
        assert len(trims) == 1  # once per idle spell
        await middleware(http, None, None)  # the next burst
        await asyncio.sleep(0.2)
        assert len(trims) == 2
        await middleware({"type": "lifespan"}, None, None)
        await asyncio.sleep(0.2)
        assert len(trims) == 2  # only HTTP requests count

    asyncio.run(scenario())


def test_idle_collects_the_garbage_cycles_a_turn_left_before_trimming() -> None:
    import gc
    import weakref

    class Turn:
        pass

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # A suspended turn's leftovers: objects in a cycle, freed only by the garbage collector.
        turn = Turn()
        turn.itself = turn  # type: ignore[attr-defined]
        left.append(weakref.ref(turn))

    left: list[weakref.ref[Turn]] = []
    trims: list[bool] = []

    async def scenario() -> None:
        middleware = TrimWhenIdle(app, idle=0.05)
        middleware.trim = lambda pad: trims.append(left[0]() is None) or 1
        await middleware({"type": "http", "path": "/"}, None, None)
        assert left[0]() is not None  # nobody collects it while requests come and go
        await asyncio.sleep(0.2)

    gc.disable()
    try:
        asyncio.run(scenario())
    finally:
        gc.enable()
    assert trims == [True]  # collected at idle, before the heap was trimmed
