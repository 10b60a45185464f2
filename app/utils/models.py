"""Pydantic models of the tour.

The defaults are the tour's example inputs: the Restate UI playground shows them pre-filled and
`curl ... --json '{}'` works.
"""

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class WeatherPrompt(BaseModel):
    """A question for the WeatherAgent."""

    message: str = Field(
        default="What is the weather like in San Francisco?",
        min_length=1,
        description="The question to ask, naming a city.",
    )


class WeatherRequest(BaseModel):
    """Request to get the weather for a city."""

    city: str = Field(description="The name of the city, e.g. San Francisco.")


class WeatherResponse(BaseModel):
    """The current weather in a city."""

    temperature: float = Field(description="Temperature in degrees Celsius.")
    description: str = Field(description="Short description, e.g. Partly cloudy.")


class ClaimPrompt(BaseModel):
    """An insurance claim, described in words."""

    message: str = Field(
        default="Process my hospital bill of 3000USD for a broken leg.",
        min_length=1,
        description="The claim in plain words: what happened, where, and the amount.",
    )


class InsuranceClaim(BaseModel):
    """An insurance claim. JSON field names are camelCase (placeOfService)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    date: str = Field(description="When the costs were incurred, e.g. 2024-10-01.")
    amount: float = Field(description="The amount claimed.")
    category: str = Field(description="The kind of claim, e.g. medical or auto.")
    place_of_service: str = Field(description="Where the service was provided, e.g. a hospital.")
    reason: str = Field(description="What the claim is for, e.g. a broken leg.")


class ChatMessage(BaseModel):
    """One message to the chat assistant."""

    message: str = Field(default="Make a poem about durable execution.", min_length=1)


class MultiWeatherPrompt(BaseModel):
    """A question about the weather in one or more cities."""

    message: str = Field(default="What is the weather like in New York and San Francisco?", min_length=1)


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


class BookingPrompt(BaseModel):
    """A trip to book: hotel, flight and car."""

    booking_id: str = Field(default="", description="Your reference for this trip; empty: one is generated.")
    message: str = Field(
        default="I need to book a business trip to San Francisco from March 15-17. Flying from JFK, "
        "need a hotel downtown for 1 guest and a compact car.",
        min_length=1,
    )


class BookingResult(BaseModel):
    """What a booking system answers."""

    id: str
    confirmation: str
