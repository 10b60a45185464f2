"""Rolling back tool executions: a travel booking agent with compensations (a saga).

The agent reserves a hotel, a flight and a car with its tools, one after another. Each tool first
registers how to undo its booking, then books. If a booking fails for good (a TerminalError: no
flights to SFO, a car type that is not available), the tools stop, the handler runs the undo
actions in reverse order, each a durable step, and the invocation fails with the error. If all
goes well, the handler confirms the three reservations. A crash in the middle of a rollback
resumes it: finished cancellations are not repeated, missing ones still happen.

    curl localhost:8080/BookingWithRollbackAgent/book --json '{}'

The default trip goes to San Francisco: the flight fails, and the UI shows `Cancel flight`, then
`Cancel hotel`. Another destination books and confirms all three:

    curl localhost:8080/BookingWithRollbackAgent/book --json '{"message": "Book a trip to Seattle from March 15-17, flying from JFK, a hotel for 1 guest and a compact car."}'
"""

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import restate
from agents import Agent, RunContextWrapper
from pydantic import BaseModel
from restate.ext.openai import DurableRunner, durable_function_tool

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.bookings import (
    BookingPrompt,
    BookingResult,
    CarBooking,
    FlightBooking,
    HotelBooking,
    cancel_booking,
    confirm_booking,
    reserve_car,
    reserve_flight,
    reserve_hotel,
)

Reserve = Callable[..., Coroutine[Any, Any, BookingResult]]


@dataclass
class BookingContext:
    """The agent's run context: the Restate Context, plus what the saga needs to remember."""

    restate_context: restate.Context
    booking_id: str
    on_rollback: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_success: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def book(self, kind: str, reserve: Reserve, booking: BaseModel) -> BookingResult:
        """Book with the booking system, after remembering how to undo and how to confirm it."""
        restate_context, booking_id = self.restate_context, self.booking_id
        # The compensation is registered before booking: if the booking fails half-way, the
        # cancellation still runs (cancelling what does not exist is harmless; a forgotten one is not).
        self.on_rollback.append(
            lambda: restate_context.run_typed(
                f"Cancel {kind}", cancel_booking, kind=kind, booking_id=booking_id
            )
        )
        self.on_success.append(
            lambda: restate_context.run_typed(
                f"Confirm {kind}", confirm_booking, kind=kind, booking_id=booking_id
            )
        )
        return await restate_context.run_typed(
            f"Book {kind}", reserve, booking_id=booking_id, booking=booking
        )


@durable_function_tool
async def book_hotel(wrapper: RunContextWrapper[BookingContext], booking: HotelBooking) -> BookingResult:
    """Book a hotel."""
    return await wrapper.context.book("hotel", reserve_hotel, booking)


@durable_function_tool
async def book_flight(wrapper: RunContextWrapper[BookingContext], booking: FlightBooking) -> BookingResult:
    """Book a flight."""
    return await wrapper.context.book("flight", reserve_flight, booking)


@durable_function_tool
async def book_car(wrapper: RunContextWrapper[BookingContext], booking: CarBooking) -> BookingResult:
    """Book a rental car."""
    return await wrapper.context.book("car", reserve_car, booking)


booking_agent = Agent[BookingContext](
    name="BookingWithRollbackAgent",
    instructions="Book a complete travel package with the requirements in the prompt. "
    "Use the tools to book the hotel first, then the flight, then the car, one at a time.",
    tools=[book_hotel, book_flight, book_car],
    model=MODEL,
)

agent_service = restate.Service("BookingWithRollbackAgent")


@agent_service.handler()
async def book(restate_context: restate.Context, prompt: BookingPrompt) -> str:
    # restate_context.uuid() is journaled: a replay gets the same id, so the saga keeps its identity.
    saga = BookingContext(
        restate_context=restate_context, booking_id=prompt.booking_id or str(restate_context.uuid())
    )
    try:
        result = await DurableRunner.run(
            booking_agent, prompt.message, context=saga, run_options=LLM_RETRY, max_turns=MAX_TURNS
        )
    except restate.TerminalError:
        # Undo in reverse order, each a durable step, then fail with the original error.
        for compensate in reversed(saga.on_rollback):
            await compensate()
        raise

    for confirm in saga.on_success:
        await confirm()
    return str(result.final_output)
