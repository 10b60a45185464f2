"""The weather: the tour's first tool and its models (steps 1, 10, 11; ScheduledAgent, StreamingAgent).

`fetch_weather` does the work behind the agents' `get_weather` tools. It runs inside a durable step
(`restate_context.run_typed("Get weather", ...)`), so its result is journaled and a retry or a
replay never fetches again.
"""

import os
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, Field
from restate import TerminalError

from app.runtime.http_clients import loop_client
from app.runtime.request_models import RequestModel, ShortText, message_field

# wttr.in by default; `make run` (offline) and the tests point this at the stand-in's copy of it.
WEATHER_API_URL = os.environ.get("WEATHER_API_URL", "https://wttr.in").rstrip("/")


class WeatherPrompt(RequestModel):
    """A question for the WeatherAgent."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"message": "What is the weather like in San Francisco?"}]

    message: str = message_field(
        "What is the weather like in San Francisco?", "The question to ask, naming a city."
    )


class MultiWeatherPrompt(RequestModel):
    """A question about the weather in one or more cities."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"message": "What is the weather like in New York and San Francisco?"}
    ]

    message: str = message_field(
        "What is the weather like in New York and San Francisco?", "The question, naming one or more cities."
    )


class WeatherRequest(RequestModel):
    """Request to get the weather for a city."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"city": "San Francisco"}]

    city: ShortText = Field(description="The name of the city, e.g. San Francisco.")


class WeatherResponse(BaseModel):
    """The current weather in a city."""

    temperature: float = Field(description="Temperature in degrees Celsius.")
    description: str = Field(description="Short description, e.g. Partly cloudy.")


async def fetch_weather(req: WeatherRequest) -> WeatherResponse:
    fail_on_denver(req.city)
    weather_data = await call_weather_api(req.city)
    return parse_weather_data(weather_data)


def fail_on_denver(city: str) -> None:
    """The tour's simulated outage: the weather API is down for Denver.

    Remove the call in `fetch_weather` (or restart with FAIL_ON_DENVER=false) and the invocation
    that kept retrying finishes.
    """
    if os.environ.get("FAIL_ON_DENVER", "true").lower() in ("0", "false", "no", "off"):
        return
    if city.strip().lower() == "denver":
        # A plain exception is transient: Restate retries the step until it succeeds.
        raise Exception("[👻 SIMULATED] Fetching weather failed: Weather API down...")


async def call_weather_api(city: str) -> dict:
    url = f"{WEATHER_API_URL}/{quote(city.strip())}?format=j1"
    client = loop_client("weather", lambda: httpx.AsyncClient(timeout=10.0))
    try:
        resp = await client.get(url)
    except httpx.HTTPError as e:
        # Network trouble is transient: raising lets Restate retry the step.
        raise Exception(f"Weather API unreachable: {e!r}") from e

    if resp.status_code == 404 or resp.text.startswith("Unknown location"):
        # Retrying cannot fix a city that does not exist: fail the invocation with a clear message.
        raise TerminalError(f"Unknown location: {city}. Please provide a valid city name.", status_code=400)
    if resp.status_code >= 400:
        raise Exception(f"Weather API answered HTTP {resp.status_code}")
    data: dict = resp.json()
    return data


def parse_weather_data(weather_data: dict) -> WeatherResponse:
    current = weather_data["current_condition"][0]
    return WeatherResponse(
        temperature=float(current["temp_C"]),
        description=current["weatherDesc"][0]["value"],
    )
