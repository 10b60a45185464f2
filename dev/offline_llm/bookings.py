"""Travel bookings for the offline model: read the trip from the prompt, book step by step."""

import re
from dataclasses import dataclass
from typing import Any

from dev.offline_llm.conversation import Conversation, Reply, fill_arguments, parse_output

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATES = re.compile(rf"\b({_MONTHS})\s+(\d{{1,2}})(?:\s*[-–]\s*(?:({_MONTHS})\s+)?(\d{{1,2}}))?")
_PLACE = r"([A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)"
_DESTINATION = re.compile(rf"\bto {_PLACE}")
_ORIGIN = re.compile(rf"\b(?:flying|fly|departing|leaving) from {_PLACE}", re.IGNORECASE)
_PEOPLE = re.compile(
    r"\b(\d+)\s+(?:guests?|persons?|people|travell?ers?|passengers?|adults?)\b", re.IGNORECASE
)
_CAR_TYPES = ("compact", "sedan", "suv", "van", "convertible", "limousine")
ORDER = ("book_hotel", "book_flight", "book_car")


@dataclass
class Trip:
    origin: str
    destination: str
    start: str
    end: str
    people: int
    car_type: str

    def arguments(self) -> dict[str, Any]:
        return {
            "location": self.destination,
            "origin": self.origin,
            "destination": self.destination,
            "checkin_date": self.start,
            "departure_date": self.start,
            "pickup_date": self.start,
            "checkout_date": self.end,
            "return_date": self.end,
            "guests": self.people,
            "passengers": self.people,
            "car_type": self.car_type,
            "room_type": "standard",
            "class_type": "economy",
        }


def parse_trip(text: str) -> Trip:
    destination = _DESTINATION.search(text)
    origin = _ORIGIN.search(text)
    dates = _DATES.search(text)
    if dates:
        month, first, end_month, last = dates.groups()
        start, end = f"{month} {first}", f"{end_month or month} {last or first}"
    else:
        start = end = "not given"
    people = _PEOPLE.search(text)
    lowered = text.lower()
    car_type = next((c for c in _CAR_TYPES if re.search(rf"\b{c}\b", lowered)), "compact")
    return Trip(
        origin=origin.group(1) if origin else "not given",
        destination=destination.group(1) if destination else "not given",
        start=start,
        end=end,
        people=int(people.group(1)) if people else 1,
        car_type=car_type,
    )


def booking(conv: Conversation) -> Reply | None:
    """A booking agent with book_* tools: one booking per turn, in order, then a summary."""
    tools = {t.name: t for t in conv.tools if t.name.startswith("book_")}
    if not tools:
        return None
    trip = parse_trip(conv.last_user_text())
    for name in sorted(tools, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
        if not conv.called(name):
            return Reply(calls=[(name, fill_arguments(tools[name].parameters, trip.arguments()))])
    lines = []
    for call, output in conv.results():
        confirmation = (parse_output(output) or {}).get("confirmation", output.strip())
        lines.append(f"- {call.name.removeprefix('book_')}: {confirmation}")
    return Reply(text="Your trip is booked:\n" + "\n".join(lines))
