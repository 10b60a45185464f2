"""OpenTelemetry: the agent's spans (LLM calls, tools) nest under Restate's invocation spans."""

from collections.abc import Iterator

import pytest

from dev.harness import Tour, wait_until
from dev.otlp_collector import ReceivedSpan, SpanCollector
from dev.stack import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Tour, SpanCollector]]:
    collector = SpanCollector(free_port())
    collector.start()
    stack = Tour(
        tmp_path_factory.mktemp("traced"),
        server_env={"RESTATE_TRACING_ENDPOINT": collector.endpoint},
        endpoint_env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"},
    )
    try:
        stack.start()
        yield stack, collector
    finally:
        stack.stop()
        collector.stop()


def test_a_weather_run_is_one_trace_with_agent_spans_under_restates(
    traced: tuple[Tour, SpanCollector],
) -> None:
    stack, collector = traced
    resp = stack.call("WeatherAgent/run", {"message": "What is the weather like in Berlin?"})
    assert resp.status_code == 200, resp.text
    invocation = resp.headers["x-restate-id"]

    def spans() -> tuple[list[ReceivedSpan], list[ReceivedSpan]] | None:
        received = collector.snapshot()
        restate = [s for s in received if s.attributes.get("restate.invocation.id") == invocation]
        if not restate:
            return None
        trace = restate[0].trace_id
        agent = [s for s in received if s.service == "durable-agents-tour" and s.trace_id == trace]
        llm = [s for s in agent if s.attributes.get("openinference.span.kind") == "LLM"]
        tools = [s for s in agent if s.attributes.get("openinference.span.kind") == "TOOL"]
        return (restate, agent) if len(llm) >= 2 and tools else None

    restate, agent = wait_until(spans, timeout=30, interval=0.5, what="the spans of the run")

    restate_ids = {s.span_id for s in restate}
    # Every span of the agent hangs under a span of the Restate invocation, in the same trace.
    assert agent and all(s.parent_span_id in restate_ids for s in agent)
    llm = [s for s in agent if s.attributes.get("openinference.span.kind") == "LLM"]
    assert len(llm) == 2  # the two LLM calls, each once
    assert all(s.attributes.get("llm.model_name") == "gpt-4.1" for s in llm)
    assert all(int(s.attributes.get("llm.token_count.total", 0)) > 0 for s in llm)
    tools = [s for s in agent if s.attributes.get("openinference.span.kind") == "TOOL"]
    assert [s.attributes.get("tool.name") for s in tools] == ["get_weather"]
