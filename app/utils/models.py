"""Pydantic models of the tour.

The defaults are the tour's example inputs: the Restate UI playground shows them pre-filled and
`curl ... --json '{}'` works.
"""

from pydantic import BaseModel, Field


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
