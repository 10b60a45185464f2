"""Tool functions of the tour.

They do the real work behind the agents' tools. Each is called inside a durable step
(`restate_context.run_typed`), so its result is journaled and a retry or a replay never repeats it.
"""

import asyncio
import json
import os
import re
import weakref
from collections.abc import Callable
from urllib.parse import quote

import httpx
import restate
from restate import TerminalError

from app.utils.models import (
    BookingResult,
    CarBooking,
    FlightBooking,
    HotelBooking,
    InsuranceClaim,
    WeatherRequest,
    WeatherResponse,
)

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


# HTTP clients reused, one per event loop and purpose: creating a client costs tens of
# milliseconds (it loads the TLS certificates), more than the call itself, and a client's
# connections belong to the loop that opened them.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]]" = (
    weakref.WeakKeyDictionary()
)


def loop_client(purpose: str, make: Callable[[], httpx.AsyncClient]) -> httpx.AsyncClient:
    """The client for `purpose` on the running event loop, made by `make` the first time."""
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    if (client := clients.get(purpose)) is None:
        client = clients[purpose] = make()
    return client


def http_client() -> httpx.AsyncClient:
    return loop_client("weather", lambda: httpx.AsyncClient(timeout=10.0))


async def call_weather_api(city: str) -> dict:
    url = f"{WEATHER_API_URL}/{quote(city.strip())}?format=j1"
    try:
        resp = await http_client().get(url)
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


def restate_ingress_url() -> str:
    """Where the endpoint reaches the Restate ingress (RESTATE_INGRESS_URL, default
    http://localhost:8080): printed in the approval commands, and where streamed text is sent."""
    return os.environ.get("RESTATE_INGRESS_URL", "http://localhost:8080").rstrip("/")


def request_human_review(claim: InsuranceClaim, awakeable_id: str) -> None:
    """Notify a human reviewer. Here: print the commands that approve or reject, to the service log.

    In a real system this would send an e-mail or a Slack message with two buttons.
    """
    ingress = restate_ingress_url().removeprefix("http://")
    resolve = f"curl {ingress}/restate/awakeables/{awakeable_id}/resolve --json"
    # `make run` says where the public web process is: the reviewers' inbox has the same two buttons.
    web = os.environ.get("PUBLIC_WEB_URL")
    print(
        f"🔔 Human review requested for claim: {claim.model_dump_json(by_alias=True)}\n"
        f"   approve: {resolve} 'true'\n"
        f"   reject:  {resolve} 'false'" + (f"\n   or in the reviewers' inbox: {web}/reviews" if web else ""),
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


# --- claim analyses (parallel_tools_agent.py) -------------------------------------------------
# Simplified rules standing in for calls to a claims system. Each takes a moment, like the real
# thing would; that makes the parallel steps visible side by side in the UI's timeline.
CLAIM_CHECK_SECONDS = float(os.environ.get("CLAIM_CHECK_SECONDS", "1.0"))
COVERED_CATEGORIES = ("medical", "orthopedic", "dental", "auto")


async def check_eligibility(claim: InsuranceClaim) -> str:
    """Is this kind of claim covered at all?"""
    await asyncio.sleep(CLAIM_CHECK_SECONDS)
    return "eligible" if claim.category.lower() in COVERED_CATEGORIES else "not eligible"


async def compare_to_standard_rates(claim: InsuranceClaim) -> str:
    """Is the amount in line with what such claims usually cost?"""
    await asyncio.sleep(CLAIM_CHECK_SECONDS)
    return "reasonable" if claim.amount <= 10_000 else "not reasonable"


async def check_fraud(claim: InsuranceClaim) -> str:
    """How likely is this claim to be fraudulent?"""
    await asyncio.sleep(CLAIM_CHECK_SECONDS)
    return "high risk" if claim.amount > 20_000 else "medium risk" if claim.amount > 10_000 else "low risk"


# --- bookings (advanced/rollback_agent.py) ------------------------------------------------------
# A simulated booking system. Each call takes a moment; its log line is printed when the call is
# done, so the log shows each reservation, cancellation and confirmation that really happened.
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
