"""Deterministic weather for the wttr.in look-alike: a fixed table of cities, no randomness."""

from typing import NamedTuple


class Weather(NamedTuple):
    temp_c: int
    description: str
    humidity: int
    wind_kmph: int


CITIES: dict[str, Weather] = {
    "San Francisco": Weather(16, "Partly cloudy", 72, 19),
    "New York": Weather(11, "Sunny", 48, 14),
    "Denver": Weather(7, "Clear", 30, 11),
    "Los Angeles": Weather(23, "Sunny", 40, 9),
    "Seattle": Weather(10, "Light rain", 88, 13),
    "Chicago": Weather(6, "Overcast", 65, 24),
    "Boston": Weather(9, "Cloudy", 60, 17),
    "Austin": Weather(26, "Sunny", 45, 12),
    "Miami": Weather(28, "Thunderstorms", 80, 20),
    "Toronto": Weather(4, "Light snow", 75, 15),
    "Vancouver": Weather(9, "Drizzle", 90, 10),
    "Mexico City": Weather(19, "Partly cloudy", 50, 8),
    "Sao Paulo": Weather(24, "Showers", 78, 11),
    "Buenos Aires": Weather(21, "Clear", 55, 16),
    "London": Weather(12, "Light drizzle", 82, 18),
    "Paris": Weather(14, "Partly cloudy", 70, 12),
    "Berlin": Weather(10, "Overcast", 68, 15),
    "Amsterdam": Weather(11, "Windy", 77, 32),
    "Brussels": Weather(12, "Cloudy", 74, 14),
    "Madrid": Weather(20, "Sunny", 35, 10),
    "Lisbon": Weather(19, "Clear", 60, 17),
    "Rome": Weather(18, "Sunny", 55, 9),
    "Vienna": Weather(9, "Fog", 92, 5),
    "Zurich": Weather(8, "Light rain", 85, 7),
    "Stockholm": Weather(3, "Snow showers", 80, 20),
    "Oslo": Weather(1, "Light snow", 84, 12),
    "Copenhagen": Weather(7, "Cloudy", 79, 22),
    "Dublin": Weather(11, "Showers", 86, 25),
    "Athens": Weather(22, "Sunny", 45, 13),
    "Istanbul": Weather(17, "Partly cloudy", 66, 19),
    "Cairo": Weather(29, "Sunny", 25, 15),
    "Nairobi": Weather(24, "Partly cloudy", 52, 14),
    "Cape Town": Weather(21, "Windy", 58, 35),
    "Dubai": Weather(33, "Sunny", 40, 12),
    "Mumbai": Weather(31, "Haze", 70, 11),
    "Delhi": Weather(27, "Haze", 38, 8),
    "Singapore": Weather(30, "Thunderstorms", 84, 9),
    "Hong Kong": Weather(25, "Partly cloudy", 74, 16),
    "Shanghai": Weather(18, "Light rain", 81, 14),
    "Beijing": Weather(13, "Clear", 30, 10),
    "Seoul": Weather(12, "Clear", 42, 9),
    "Tokyo": Weather(17, "Cloudy", 63, 11),
    "Sydney": Weather(22, "Sunny", 57, 21),
    "Melbourne": Weather(17, "Showers", 69, 24),
    "Auckland": Weather(16, "Windy", 76, 30),
}

_BY_KEY = {name.lower(): name for name in CITIES}


def lookup(city: str) -> tuple[str, Weather] | None:
    """The canonical name and weather of a city in the table, or None for an unknown place."""
    name = _BY_KEY.get(" ".join(city.replace("+", " ").split()).lower())
    return (name, CITIES[name]) if name else None


def wttr_j1(name: str, w: Weather) -> dict:
    """The subset of wttr.in's `?format=j1` document that weather clients read."""
    return {
        "current_condition": [
            {
                "temp_C": str(w.temp_c),
                "temp_F": str(round(w.temp_c * 9 / 5 + 32)),
                "FeelsLikeC": str(w.temp_c - (2 if w.wind_kmph > 20 else 0)),
                "humidity": str(w.humidity),
                "windspeedKmph": str(w.wind_kmph),
                "weatherDesc": [{"value": w.description}],
                "observation_time": "12:00 PM",
            }
        ],
        "nearest_area": [{"areaName": [{"value": name}]}],
        "request": [{"query": name, "type": "City"}],
    }
