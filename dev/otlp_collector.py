"""A minimal OTLP/gRPC trace receiver that keeps spans in memory (tests) or prints them.

    python -m dev.otlp_collector --port 4317

then `OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 make run`: every span of restate-server and
of the endpoint is printed as it arrives. For real use, run Jaeger or an OpenTelemetry Collector.
"""

import argparse
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collector: "SpanCollector") -> None:
        self.collector = collector

    def Export(self, request: Any, context: Any) -> Any:
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(resource.get("service.name", "unknown"))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.collector.add(
                        ReceivedSpan(
                            service=service,
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()


class SpanCollector:
    def __init__(self, port: int, echo: bool = False) -> None:
        self.port = port
        self.echo = echo
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        self._server.add_insecure_port(f"127.0.0.1:{port}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, span: ReceivedSpan) -> None:
        with self._lock:
            self.spans.append(span)
        if self.echo:
            print(f"[{span.service}] {span.name} trace={span.trace_id[:8]} parent={span.parent_span_id[:8] or '-'}",
                  flush=True)  # fmt: skip

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dev.otlp_collector", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4317)
    collector = SpanCollector(parser.parse_args().port, echo=True)
    collector.start()
    print(f"receiving OTLP/gRPC traces on {collector.endpoint}", flush=True)
    collector._server.wait_for_termination()


if __name__ == "__main__":
    main()
