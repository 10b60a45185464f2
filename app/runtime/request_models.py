"""The rules of every request model: unknown fields refused, strict types, bounded text.

Every handler input derives from `RequestModel`; the field types below carry rules that stay out
of the JSON schema, so the tool schemas the model sees stay within what OpenAI's strict function
schemas accept. A request that breaks a rule gets HTTP 400 naming the field (app/runtime/front_door.py).
"""

import math
import os
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

# The longest message a prompt may carry (characters). Longer ones are refused with a 400 before
# anything reaches the model: a request must not cost an unbounded number of tokens.
MAX_MESSAGE_CHARS = int(os.environ.get("MAX_MESSAGE_CHARS", "4000"))
# Short text fields (a claim's category, place, reason; a city).
MAX_FIELD_CHARS = 200


class RequestModel(BaseModel):
    """Base of every handler input: unknown fields rejected, no type coercion.

    `EXAMPLES` are valid requests that produce the tour's answer. Restate builds the playground's
    OpenAPI document from `model_json_schema(mode="serialization")`, which carries them; the tool
    schemas that the Agents SDK and `openai.pydantic_function_tool` build for the LLM use the
    validation mode and stay free of them (OpenAI's strict function schemas accept only a
    subset of JSON Schema).
    """

    # cache_strings: a request's values (ids, claims, questions) are rarely seen twice; pydantic's
    # cache of JSON strings would keep them, ~1.5 MB in every endpoint process.
    model_config = ConfigDict(extra="forbid", strict=True, cache_strings="keys")

    EXAMPLES: ClassVar[list[dict[str, Any]]] = []

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        schema = super().model_json_schema(*args, **kwargs)
        if kwargs.get("mode") == "serialization" and cls.EXAMPLES:
            schema["examples"] = cls.EXAMPLES
        return schema


# --- field types whose rules stay out of the JSON schema (tool arguments use them too) -------------


def _positive_finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _text(max_chars: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > max_chars:
            raise ValueError(f"must be at most {max_chars} characters (got {len(value)})")
        return value

    return check


def _iso_date_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a date, YYYY-MM-DD")
    return value


PositiveAmount = Annotated[float, AfterValidator(_positive_finite)]
ShortText = Annotated[str, AfterValidator(_text(MAX_FIELD_CHARS))]
# A calendar date; in JSON a plain ISO string ("2024-10-01"). The tool schema says "string" only.
IsoDate = Annotated[
    date,
    Field(strict=False),
    BeforeValidator(_iso_date_string),
    WithJsonSchema({"type": "string"}, mode="validation"),
]


def message_field(default: str, description: str) -> Any:
    """A prompt field: not empty, at most MAX_MESSAGE_CHARS characters, with the tour's default."""
    return Field(default=default, min_length=1, max_length=MAX_MESSAGE_CHARS, description=description)
