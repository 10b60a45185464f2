"""OpenTelemetry traces of the agents, nested under Restate's own invocation spans.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (e.g. http://localhost:4317, OTLP over gRPC: Jaeger,
Langfuse, an OpenTelemetry Collector). Then the Agents SDK's spans — the agent run, each LLM call
with its model and token usage, each tool — are exported through OpenTelemetry, and the SDK's
`RestateTracerProvider` parents them under the span of the Restate invocation that ran them, so
one trace shows the invocation from the ingress to the last LLM call. During a replay it records
nothing: a journaled LLM call shows up once, when it really happened.

Point restate-server at the same collector (`make run` does, from the same variable) to get its
spans too.
"""

import os


def setup_tracing() -> bool:
    """Install the exporter and the Agents SDK instrumentation; False when tracing is off."""
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
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    # exclusive: the SDK's default processor, which uploads traces to OpenAI, is replaced.
    OpenAIAgentsInstrumentor().instrument(
        tracer_provider=RestateTracerProvider(provider), exclusive_processor=True
    )
    # The offline setup turns the SDK's tracing off (nothing to upload to); spans are wanted now.
    set_tracing_disabled(False)
    return True
