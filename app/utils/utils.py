"""Tool functions of the tour.

They do the real work behind the agents' tools. Each is called inside a durable step
(`ctx.run_typed`), so its result is journaled and a retry or a replay never repeats it.
"""

import json
import os
from urllib.parse import quote

import httpx
import restate
from restate import TerminalError

from app.utils.models import InsuranceClaim, WeatherRequest, WeatherResponse

# Restate's logger stays quiet while a handler replays its journal: each line is logged once.
logger = restate.getLogger(__name__)

# wttr.in by default; `make run` (offline) and the tests point this at the stand-in's copy of it.
WEATHER_API_URL = os.environ.get("WEATHER_API_URL", "https://wttr.in").rstrip("/")


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
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
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


def request_human_review(claim: InsuranceClaim, awakeable_id: str) -> None:
    """Notify a human reviewer. Here: print the commands that approve or reject, to the service log.

    In a real system this would send an e-mail or a Slack message with two buttons.
    """
    ingress = os.environ.get("RESTATE_INGRESS_URL", "http://localhost:8080").removeprefix("http://")
    resolve = f"curl {ingress}/restate/awakeables/{awakeable_id}/resolve --json"
    print(
        f"🔔 Human review requested for claim: {claim.model_dump_json(by_alias=True)}\n"
        f"   approve: {resolve} 'true'\n"
        f"   reject:  {resolve} 'false'",
        flush=True,
    )


def parse_decision(answer: bytes | None) -> bool | None:
    """The reviewer's decision from the body of the resolve command: JSON `true` or `false`.

    Restate's ingress accepts any body for an awakeable, so a typo (`--json 'maybe'`) arrives
    here. It must not decide the claim, nor break the invocation: it is logged and ignored, and
    the caller asks again.
    """
    try:
        value = json.loads(answer or b"")
    except ValueError:
        value = None
    if isinstance(value, bool):
        return value
    shown = (answer or b"").decode(errors="replace")[:80]
    logger.warning("Ignored the answer %r to a review request: send true or false. Asking again.", shown)
    return None
