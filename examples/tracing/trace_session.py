"""See an avatar call as one trace in Arize Phoenix (or any OpenTelemetry backend).

    pip install arize-phoenix     # masquerade's otel extra: see docs/first-hour.md
    phoenix serve                                   # UI and OTLP/HTTP on 127.0.0.1:6006
    python examples/tracing/trace_session.py        # then open http://127.0.0.1:6006

The trace of one run::

    invoke_workflow support-call
    ├─ node concierge
    │  └─ invoke_agent concierge          the avatar session (status, queue, ready events)
    │     ├─ realtime_inference ...       one per avatar response, when the provider has them
    │     ├─ execute_tool lookup_order
    │     ├─ execute_tool book_slot       error.type=timeout (the warehouse hangs on Sundays)
    │     └─ execute_tool book_slot
    └─ node ticket

Without ``RUNWAYML_API_SECRET`` the Runway emulator plays the call in-process. Spans go
to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default here: Phoenix's ``http://127.0.0.1:6006``).
Transcripts and tool arguments are recorded only with ``MASQUERADE_CAPTURE_CONTENT=1``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import anyio
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from pydantic import BaseModel

from masquerade import END, START, AvatarNode, Graph, Host, SessionResult, tool

PROJECT = os.environ.get("PHOENIX_PROJECT_NAME", "masquerade-example")
ENDPOINT = os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:6006")


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number.

    Args:
        order_id: The order number the customer reads out, like A1001.
    """
    return {"order_id": order_id.upper(), "status": "shipped", "eta": "tomorrow"}


@tool(timeout=0.5)
async def book_slot(day: str, hour: int) -> str:
    """Book a delivery slot.

    Args:
        day: Day of the week.
        hour: Hour of the day, 8 to 18.
    """
    if day.lower() == "sunday":
        await anyio.sleep(5)  # the warehouse system hangs on Sundays: a timeout span
    return f"booked {day} at {hour}:00"


#: What the Runway emulator plays when no API key is set.
SCRIPT: list[dict[str, Any]] = [
    {"say": "Hi, I'm your concierge. How can I help?"},
    {"say": "Where is my order A1001? And can you deliver it Sunday at 10?", "role": "user"},
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"tool": "book_slot", "args": {"day": "Sunday", "hour": 10}},
    {"say": "It has shipped. Sunday is not responding; shall I try Monday?"},
    {"say": "Yes, Monday.", "role": "user"},
    {"tool": "book_slot", "args": {"day": "Monday", "hour": 10}},
    {"say": "Booked for Monday at ten. Goodbye!"},
    {"hangup": True},
]


class State(BaseModel):
    customer: str = "Ada Lovelace"
    call: SessionResult | None = None
    ticket: str = ""


def ticket(state: State) -> dict[str, str]:
    assert state.call is not None
    failed = sum(1 for c in state.call.tool_calls if c.error)
    return {"ticket": f"{state.customer}: {state.call.outcome}, "
                      f"{len(state.call.tool_calls)} tool calls ({failed} failed)"}


def build_graph() -> Graph[State]:
    concierge = AvatarNode(
        "runway",
        avatar="human-resource",
        name="concierge",
        tools=[lookup_order, book_slot],
        personality=lambda state: f"You are a concierge helping {state.customer}.",
        output_key="call",
        max_duration=300,
    )
    graph = Graph(State, name="support-call")
    graph.add_node("concierge", concierge).add_node("ticket", ticket)
    graph.add_edge(START, "concierge").add_edge("concierge", "ticket").add_edge("ticket", END)
    return graph


class CountingExporter(SpanExporter):
    """The OTLP exporter, counting what it could and could not send (so that the example
    never claims a trace it could not deliver)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.sent = 0
        self.failed = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.sent += len(spans)
        else:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def setup_tracing() -> tuple[TracerProvider, CountingExporter]:
    """The application's part: an SDK provider exporting OTLP/HTTP (masquerade only uses
    the OpenTelemetry API and never installs one itself)."""
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "masquerade-example", "openinference.project.name": PROJECT}
        )
    )
    exporter = CountingExporter(OTLPSpanExporter())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider, exporter


async def main() -> State:
    provider, exporter = setup_tracing()
    try:
        async with AsyncExitStack() as stack:
            plugins = []
            if not os.environ.get("RUNWAYML_API_SECRET"):
                from masquerade_runway.emulator import RunwayEmulator

                emulator = await stack.enter_async_context(RunwayEmulator(script=SCRIPT))
                plugins.append(emulator.provider())
                print("RUNWAYML_API_SECRET is not set: the Runway emulator plays the call")
            host = await stack.enter_async_context(Host(plugins=plugins))
            final = await build_graph().run(State(), host=host)
    finally:
        provider.shutdown()  # flushes the batch of spans still in memory
    print(f"ticket: {final.ticket}")
    if exporter.failed or not exporter.sent:
        print(
            f"the trace was NOT exported: {exporter.failed} span(s) could not be sent to "
            f"{ENDPOINT} (is a trace backend running there? start one with `phoenix serve`, "
            "or set OTEL_EXPORTER_OTLP_ENDPOINT)",
            file=sys.stderr,
        )
        raise SystemExit(1)
    print(f"trace exported to {ENDPOINT}: {exporter.sent} spans (Phoenix project {PROJECT!r})")
    return final


if __name__ == "__main__":
    anyio.run(main)
