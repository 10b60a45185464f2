"""Pydantic models of the tour.

Every handler input derives from `RequestModel` (app/utils/contract.py): unknown fields are
refused, types are strict (no "3000" or `true` for a number), text is bounded (prompts by
MAX_MESSAGE_CHARS, default 4000), amounts are positive and finite, dates are ISO dates. A request
that breaks a rule gets HTTP 400 naming the field. The defaults and `EXAMPLES` are the tour's
inputs: the Restate UI playground shows them pre-filled, and `curl ... --json '{}'` works where
every field has a default.
"""

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.utils.contract import IsoDate, PositiveAmount, RequestModel, ShortText, message_field

TOUR_CLAIM: dict[str, Any] = {
    "date": "2024-10-01",
    "amount": 3000,
    "category": "orthopedic",
    "placeOfService": "General Hospital",
    "reason": "hospital bill for a broken leg",
}


class WeatherPrompt(RequestModel):
    """A question for the WeatherAgent."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"message": "What is the weather like in San Francisco?"}]

    message: str = message_field(
        "What is the weather like in San Francisco?", "The question to ask, naming a city."
    )


class WeatherRequest(RequestModel):
    """Request to get the weather for a city."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"city": "San Francisco"}]

    city: ShortText = Field(description="The name of the city, e.g. San Francisco.")


class WeatherResponse(BaseModel):
    """The current weather in a city."""

    temperature: float = Field(description="Temperature in degrees Celsius.")
    description: str = Field(description="Short description, e.g. Partly cloudy.")


class ClaimPrompt(RequestModel):
    """An insurance claim, described in words."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"message": "Process my hospital bill of 3000USD for a broken leg."}
    ]

    message: str = message_field(
        "Process my hospital bill of 3000USD for a broken leg.",
        "The claim in plain words: what happened, where, and the amount.",
    )


class InsuranceClaim(RequestModel):
    """An insurance claim. JSON field names are camelCase (placeOfService)."""

    # Also the argument of claim tools, filled in by the LLM (and this docstring is in the tool's
    # schema): the rules are validators that stay out of the tool's JSON schema (see RequestModel).

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        # "Place of service" in the playground, not the alias's "Placeofservice".
        field_title_generator=lambda name, _info: name.replace("_", " ").capitalize(),
    )

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [TOUR_CLAIM]

    date: IsoDate | None = Field(
        default=None,
        description="When the costs were incurred, YYYY-MM-DD (e.g. 2024-10-01); null if unknown.",
    )
    # A model fills these from the user's words, which may not say: each description tells it what
    # to write then, instead of leaving it to invent something.
    amount: PositiveAmount = Field(description="The amount claimed, greater than 0.")
    category: ShortText = Field(
        description="The kind of claim, e.g. medical or auto; 'other' if the claim does not say."
    )
    place_of_service: ShortText = Field(
        description="Where the service was provided, e.g. a hospital; 'unknown' if the claim does not say."
    )
    reason: ShortText = Field(description="What the claim is for, e.g. a broken leg.")


class ChatMessage(RequestModel):
    """One message to the chat assistant."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"message": "My name is Alice."}]

    message: str = message_field("Make a poem about durable execution.", "What you say to the assistant.")


class MultiWeatherPrompt(RequestModel):
    """A question about the weather in one or more cities."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"message": "What is the weather like in New York and San Francisco?"}
    ]

    message: str = message_field(
        "What is the weather like in New York and San Francisco?", "The question, naming one or more cities."
    )


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
