"""The OpenAI client every agent shares: errors Restate understands, unusable answers refused.

With `OPENAI_API_KEY` set, the agents talk to OpenAI (or to `OPENAI_BASE_URL`); `make run` without
a key points them at the offline stand-in instead. The code is the same either way.
"""

import email.utils
import time
from datetime import UTC, timedelta
from functools import cache
from typing import Any

import openai
from openai.types.chat import ChatCompletion
from openai.types.responses import Response
from restate import TerminalError
from restate.exceptions import RetryableError

from app.runtime.invocation import invocation_id
from app.runtime.settings import LLM_TIMEOUT_SECONDS, MODEL, OPENAI_API
from app.runtime.usage import bill

# HTTP statuses where asking again cannot help: the request or the credentials are wrong.
PERMANENT_STATUSES = {400, 401, 403, 404, 422}


def retry_after(response: Any) -> timedelta | None:
    """The server's Retry-After (seconds, or an HTTP date), or OpenAI's retry-after-ms, if any."""
    headers = getattr(response, "headers", None) or {}
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return timedelta(milliseconds=float(ms))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return timedelta(seconds=max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        # A garbled header must not replace the API's error with one about a date: no hint, then.
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are in GMT
    return timedelta(seconds=max(0.0, when.timestamp() - time.time()))


def classify(error: openai.APIStatusError) -> Exception:
    """What Restate should do with a failed LLM request.

    - 400/401/403/404/422: a TerminalError. Retrying a bad request or a bad key only costs time
      (and money): the step fails at once, without using up the attempts.
    - 408/409/429/5xx with Retry-After: a RetryableError that makes Restate wait as long as the
      API asked before the next attempt.
    - anything else: unchanged, retried with the step's backoff.
    """
    status = error.status_code
    if status in PERMANENT_STATUSES:
        # The message names the problem; OpenAI masks keys in it, and no header is copied.
        return TerminalError(
            f"The LLM API refused the request (HTTP {status}): {error.message}", status_code=status
        )
    wait = retry_after(error.response)
    if wait is not None and (status in (408, 409, 429) or status >= 500):
        return RetryableError(f"The LLM API asked to retry later (HTTP {status})", retry_after=wait)
    return error


# A model answer that is unusable is a 502 (Bad Gateway): not the caller's fault, not transient.
MISBEHAVIOUR_STATUS = 502


class ModelMisbehaved(TerminalError):
    """The model's answer can never lead anywhere: end the invocation and say what it did.

    `billed`: the usage of an answer the API delivered (and bills) but that is refused here. It
    travels in the error's metadata, which Restate journals with the failure, so the cost ledger
    finds it on every replay too (app/runtime/usage.py), with the invocation that was billed."""

    def __init__(self, message: str, billed: tuple[str, int, int] | None = None) -> None:
        metadata = bill(*billed) if billed is not None else None
        super().__init__(message, status_code=MISBEHAVIOUR_STATUS, metadata=metadata)


def check_answer(answer: Any, model: str = MODEL) -> None:
    """A cut-off answer comes back cut off every time it is asked again: stop at once. The API
    bills it all the same: its usage goes with the error (`model`: the model that was asked).

    (A Response with `status: "failed"` is left to the Agents SDK, which raises inside the
    journaled LLM step: it is retried like any failed request, at most LLM_MAX_ATTEMPTS times.)
    """
    if isinstance(answer, Response) and answer.status == "incomplete":
        reason = answer.incomplete_details.reason if answer.incomplete_details else None
        usage = answer.usage
        billed = (model, usage.input_tokens, usage.output_tokens) if usage else None
        raise ModelMisbehaved(
            f"The model's answer was cut off (incomplete: {reason or 'no reason given'}).", billed
        )
    if isinstance(answer, ChatCompletion):
        usage_ = answer.usage
        billed = (model, usage_.prompt_tokens, usage_.completion_tokens) if usage_ else None
        for choice in answer.choices:
            if choice.finish_reason == "length":
                raise ModelMisbehaved("The model's answer was cut off (finish_reason: length).", billed)
            if choice.finish_reason == "content_filter":
                raise ModelMisbehaved(
                    "The model's answer was withheld (finish_reason: content_filter).", billed
                )


class RestateAwareOpenAI(openai.AsyncOpenAI):
    """The OpenAI client, with errors translated into what Restate understands (see `classify`),
    unusable answers turned into terminal errors (see `check_answer`), and a Chat Completions
    answer stamped with the invocation that asked for it (`made_by`)."""

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            answer = await super().request(*args, **kwargs)
        except openai.APIStatusError as e:
            raise classify(e) from e
        options = args[1] if len(args) > 1 else kwargs.get("options")
        body = getattr(options, "json_data", None)
        check_answer(answer, body.get("model", MODEL) if isinstance(body, dict) else MODEL)
        if isinstance(answer, ChatCompletion):
            # Journaled with the answer (an extra field): see `made_by`.
            setattr(answer, "made_by", invocation_id())  # noqa: B010 (pydantic keeps it as an extra)
        return answer


def made_by(answer: ChatCompletion) -> str | None:
    """The invocation that asked for a journaled Chat Completions answer: another one's, if this
    run was restarted from a copy of its journal (docs/control.md); None if not stamped."""
    stamp = (answer.model_extra or {}).get("made_by")
    return stamp if isinstance(stamp, str) else None


@cache
def openai_client() -> RestateAwareOpenAI:
    """The one client of the endpoint. It leaves retrying to Restate (max_retries=0).

    The OpenAI client retries twice on its own by default. Those retries are invisible to Restate
    and would multiply with its durable retries, so the attempt cap above would not hold.
    """
    return RestateAwareOpenAI(max_retries=0, timeout=LLM_TIMEOUT_SECONDS)


def configure_openai_client() -> None:
    """Make the Agents SDK use `openai_client()` for every agent, over the API OPENAI_API names,
    with request bodies built without the client's per-call type walk (app/runtime/request_body.py)."""
    from agents import set_default_openai_api, set_default_openai_client

    from app.runtime import request_body

    request_body.install()
    set_default_openai_client(openai_client())
    set_default_openai_api("chat_completions" if OPENAI_API == "chat_completions" else "responses")
