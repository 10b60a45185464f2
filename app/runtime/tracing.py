"""OpenTelemetry traces of the agents, in the trace of the Restate invocation that ran them.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (OTLP over gRPC: `make run-traced` points it at a
local Phoenix; Jaeger, Langfuse or an OpenTelemetry Collector work the same). Then every span of
an agent run goes to the trace of its invocation, under the `invocation-attempt` span that
restate-server exports for the attempt that did the work:

- the Agents SDK's spans (the agent, each LLM call with its model, prompt, answer and tokens,
  each tool), through OpenInference's instrumentation, which Phoenix reads natively;
- each durable step that runs (`call LLM`, `Get weather`, `Request review`), named as in the
  journal, with its input and result, so that the trace reads like the journal;
- an LLM call made with the OpenAI client outside the Agents SDK (the manual loop), as an LLM span.

Spans are only recorded for work that happens: during a replay the SDK's `RestateTracerProvider`
records nothing, and a journaled step does not run again. A crash-and-replay shows each LLM call
once; a failed attempt of a step shows as a failed span, as often as it was tried. Nothing here
writes to the journal: turning tracing on or off never changes what a run replays.

All spans carry `openinference.project.name` (TRACES_PROJECT, default `durable-agents-tour`), the
project Phoenix files them under; `make run-traced` gives restate-server's spans the same one.
"""

import functools
import inspect
import json
import os
from typing import Any

from opentelemetry.trace import Span, Tracer

PROJECT = os.environ.get("TRACES_PROJECT", "durable-agents-tour")

# The spans a process holds when it is killed are lost: export them within a second (OTLP's
# default is five). OTEL_BSP_SCHEDULE_DELAY overrides it.
EXPORT_DELAY_MS = 1000

# Inputs and results of steps can be large (an LLM response): a span keeps their beginning.
MAX_VALUE_CHARS = 4000


def setup_tracing() -> bool:
    """Install the exporter and the instrumentation; False when tracing is off."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    from agents import set_tracing_disabled
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from restate.ext.tracing import RestateTracerProvider

    service_name = os.environ.get("OTEL_SERVICE_NAME", "durable-agents-tour")
    resource = Resource.create({"service.name": service_name, "openinference.project.name": PROJECT})
    provider = TracerProvider(resource=resource)
    delay = None if os.environ.get("OTEL_BSP_SCHEDULE_DELAY") else EXPORT_DELAY_MS
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=delay))
    # Every span is parented under the Restate invocation's attempt, and none is made on replay.
    restate_provider = RestateTracerProvider(provider)
    # exclusive: the SDK's default processor, which uploads traces to OpenAI, is replaced.
    OpenAIAgentsInstrumentor().instrument(tracer_provider=restate_provider, exclusive_processor=True)
    # The offline setup turns the SDK's tracing off (nothing to upload to); spans are wanted now.
    set_tracing_disabled(False)
    tracer = restate_provider.get_tracer(__name__)
    _trace_steps(tracer)
    _trace_plain_llm_calls(tracer)
    return True


# --- durable steps -----------------------------------------------------------------------------


def _trace_steps(tracer: Tracer) -> None:
    """Every `ctx.run` / `ctx.run_typed` action that runs is a span named as its journal entry.

    The SDK schedules an action only when its result is not in the journal yet, so wrapping the
    action (not the call) records each step once per attempt that really ran it."""
    from restate.server_context import ServerInvocationContext

    run, run_typed = ServerInvocationContext.run, ServerInvocationContext.run_typed

    def traced_run(self: Any, name: str, action: Any, *args: Any, **kwargs: Any) -> Any:
        return run(self, name, _in_span(tracer, name, action), *args, **kwargs)

    def traced_run_typed(self: Any, name: str, action: Any, *args: Any, **kwargs: Any) -> Any:
        return run_typed(self, name, _in_span(tracer, name, action), *args, **kwargs)

    setattr(ServerInvocationContext, "run", traced_run)  # noqa: B010
    setattr(ServerInvocationContext, "run_typed", traced_run_typed)  # noqa: B010


def _in_span(tracer: Tracer, name: str, action: Any) -> Any:
    """`action`, recorded as a CHAIN span `name` each time it runs. Same signature (the SDK reads
    the result's type from it) and the same kind of callable (async stays async)."""
    attributes = {"openinference.span.kind": "CHAIN", "restate.step.name": name}

    def begin(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if args or kwargs:
            span.set_attribute("input.value", _text({"args": list(args), **kwargs} if args else kwargs))
            span.set_attribute("input.mime_type", "application/json")

    def end(span: Span, result: Any) -> Any:
        span.set_attribute("output.value", _text(result))
        span.set_attribute("output.mime_type", "application/json")
        return result

    if inspect.iscoroutinefunction(action):

        @functools.wraps(action)
        async def traced_async(*args: Any, **kwargs: Any) -> Any:
            with tracer.start_as_current_span(name, attributes=attributes) as span:
                begin(span, args, kwargs)
                return end(span, await action(*args, **kwargs))

        return traced_async

    @functools.wraps(action)
    def traced(*args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            begin(span, args, kwargs)
            return end(span, action(*args, **kwargs))

    return traced


def _text(value: Any) -> str:
    """JSON of a step's input or result (pydantic models as their JSON), cut to MAX_VALUE_CHARS."""

    def plain(obj: Any) -> Any:
        dump = getattr(obj, "model_dump", None)
        return dump(mode="json") if callable(dump) else str(obj)

    try:
        text = json.dumps(value, default=plain, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "..."


# --- LLM calls outside the Agents SDK ----------------------------------------------------------


def _trace_plain_llm_calls(tracer: Tracer) -> None:
    """A Chat Completions request of the endpoint's OpenAI client made outside an Agents SDK run
    (whose LLM spans come from the instrumentation) becomes an LLM span with OpenInference's
    attributes: model, messages, answer, tokens."""
    from agents.tracing import get_current_span
    from openai.types.chat import ChatCompletion

    from app.runtime.llm_client import RestateAwareOpenAI

    request = RestateAwareOpenAI.request

    async def traced_request(self: RestateAwareOpenAI, *args: Any, **kwargs: Any) -> Any:
        options = args[1] if len(args) > 1 else kwargs.get("options")
        body = getattr(options, "json_data", None)
        plain = isinstance(body, dict) and "messages" in body and not body.get("stream")
        if not plain or get_current_span() is not None:
            return await request(self, *args, **kwargs)
        assert isinstance(body, dict)
        attributes = {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.model_name": str(body.get("model", "")),
            "input.value": _text(body.get("messages")),
            "input.mime_type": "application/json",
        }
        for i, message in enumerate(body.get("messages") or []):
            if isinstance(message, dict):
                attributes[f"llm.input_messages.{i}.message.role"] = str(message.get("role", ""))
                attributes[f"llm.input_messages.{i}.message.content"] = str(message.get("content") or "")
        with tracer.start_as_current_span("ChatCompletion", attributes=attributes) as span:
            answer = await request(self, *args, **kwargs)
            if isinstance(answer, ChatCompletion):
                span.set_attribute("output.value", answer.model_dump_json())
                span.set_attribute("output.mime_type", "application/json")
                if answer.choices:
                    message = answer.choices[0].message
                    span.set_attribute("llm.output_messages.0.message.role", message.role)
                    span.set_attribute("llm.output_messages.0.message.content", message.content or "")
                if answer.usage is not None:
                    span.set_attribute("llm.token_count.prompt", answer.usage.prompt_tokens)
                    span.set_attribute("llm.token_count.completion", answer.usage.completion_tokens)
                    span.set_attribute("llm.token_count.total", answer.usage.total_tokens)
            return answer

    RestateAwareOpenAI.request = functools.wraps(request)(traced_request)  # type: ignore[method-assign]
