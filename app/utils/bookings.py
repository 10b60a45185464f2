"""Travel bookings: the models and the simulated booking system of the rollback agent (step 12).

Each call takes a moment; its log line is printed when the call is done, so the log shows each
reservation, cancellation and confirmation that really happened.
"""

import asyncio
import os
import re
from typing import Any, ClassVar

from pydantic import BaseModel, Field
from restate import TerminalError

from app.runtime.request_models import RequestModel, message_field


class HotelBooking(BaseModel):
    """A hotel reservation."""

    location: str = Field(description="City of the hotel.")
    checkin_date: str
    checkout_date: str
    guests: int = Field(ge=1)
    room_type: str = "standard"


class FlightBooking(BaseModel):
    """A flight reservation."""

    origin: str = Field(description="Departure airport or city.")
    destination: str = Field(description="Arrival airport or city.")
    departure_date: str
    return_date: str | None = None
    passengers: int = Field(ge=1)
    class_type: str = "economy"


class CarBooking(BaseModel):
    """A rental car reservation."""

    location: str = Field(description="City where the car is picked up.")
    pickup_date: str
    return_date: str
    car_type: str = Field(
        default="compact", description="compact, sedan, suv, van, convertible or limousine."
    )


class BookingPrompt(RequestModel):
    """A trip to book: hotel, flight and car."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "booking_id": "",
            "message": "I need to book a business trip to San Francisco from March 15-17. Flying from JFK, "
            "need a hotel downtown for 1 guest and a compact car.",
        }
    ]

    booking_id: str = Field(
        default="", max_length=100, description="Your reference for this trip; empty: one is generated."
    )
    message: str = message_field(
        "I need to book a business trip to San Francisco from March 15-17. Flying from JFK, "
        "need a hotel downtown for 1 guest and a compact car.",
        "The trip in plain words.",
    )


class BookingResult(BaseModel):
    """What a booking system answers."""

    id: str
    confirmation: str


BOOKING_SECONDS = float(os.environ.get("BOOKING_SECONDS", "0.3"))
UNAVAILABLE_CAR_TYPES = ("limousine", "convertible")


async def reserve_hotel(booking_id: str, booking: HotelBooking) -> BookingResult:
    await asyncio.sleep(BOOKING_SECONDS)
    print(f"🏨 Reserved hotel in {booking.location} for {booking.guests} guest(s) [{booking_id}]", flush=True)
    return BookingResult(id=booking_id, confirmation=f"Hotel in {booking.location}, {booking.checkin_date} to "
                         f"{booking.checkout_date}, {booking.guests} guest(s)")  # fmt: skip


def flies_to_sfo(destination: str) -> bool:
    """The simulated outage covers San Francisco however a model writes it: "San Francisco, CA",
    "SFO", "San Francisco International Airport (SFO)"."""
    words = re.findall(r"[a-z]+", destination.lower())
    return "sfo" in words or "san francisco" in " ".join(words)


async def reserve_flight(booking_id: str, booking: FlightBooking) -> BookingResult:
    await asyncio.sleep(BOOKING_SECONDS)
    if flies_to_sfo(booking.destination):
        # A business rule, not an outage: retrying cannot help, so the booking fails for good.
        raise TerminalError("[👻 SIMULATED] Flight booking failed: No flights to SFO available...")
    print(f"✈️ Reserved flight {booking.origin} → {booking.destination} [{booking_id}]", flush=True)
    return BookingResult(id=booking_id, confirmation=f"Flight {booking.origin} to {booking.destination} on "
                         f"{booking.departure_date}, {booking.passengers} passenger(s)")  # fmt: skip


async def reserve_car(booking_id: str, booking: CarBooking) -> BookingResult:
    await asyncio.sleep(BOOKING_SECONDS)
    if booking.car_type.strip().lower() in UNAVAILABLE_CAR_TYPES:
        raise TerminalError(
            f"[👻 SIMULATED] Car booking failed: no {booking.car_type} available in {booking.location}"
        )
    print(f"🚗 Reserved {booking.car_type} car in {booking.location} [{booking_id}]", flush=True)
    return BookingResult(id=booking_id, confirmation=f"{booking.car_type.capitalize()} car in {booking.location}, "
                         f"{booking.pickup_date} to {booking.return_date}")  # fmt: skip


async def cancel_booking(kind: str, booking_id: str) -> None:
    await asyncio.sleep(BOOKING_SECONDS)
    print(f"❌ Cancelled {kind} booking [{booking_id}]", flush=True)


async def confirm_booking(kind: str, booking_id: str) -> None:
    await asyncio.sleep(BOOKING_SECONDS)
    print(f"✅ Confirmed {kind} booking [{booking_id}]", flush=True)
