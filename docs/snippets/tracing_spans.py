"""Tracing: the spans of a graph run, read back from the OpenTelemetry SDK in memory."""

import anyio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from masquerade import END, START, AvatarNode, Graph, Host, SessionResult, tool
from masquerade.builtin.tracing import Tracing
from masquerade.testing import ScriptedProvider


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return {"order_id": order_id, "status": "shipped"}


class State(BaseModel):
    call: SessionResult | None = None


graph = Graph(State, name="support")
graph.add_node("concierge", AvatarNode("scripted", tools=[lookup_order], output_key="call"))
graph.add_edge(START, "concierge")
graph.add_edge("concierge", END)


async def main() -> list[str]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    # Your own Tracing instance (explicit provider, content capture on) instead of the
    # built-in one, which uses the global provider.
    provider = ScriptedProvider(
        [{"say": "Hello!"}, {"tool": "lookup_order", "args": {"order_id": "A1"}}]
    )
    host = Host(
        plugins=[provider, Tracing(tracer_provider=tracer_provider, capture_content=True)],
        load_entrypoints=False,
        environ={"MASQUERADE_DISABLE_PLUGINS": "tracing"},
    )
    await graph.run(State(), host=host)

    spans = {span.context.span_id: span for span in exporter.get_finished_spans()}

    def depth(span) -> int:
        return 0 if span.parent is None else 1 + depth(spans[span.parent.span_id])

    tree = [
        "  " * depth(span) + span.name
        for span in sorted(spans.values(), key=lambda s: (s.start_time, depth(s)))
    ]
    print("\n".join(tree))
    tool_span = next(s for s in spans.values() if s.name.startswith("execute_tool"))
    print(tool_span.attributes["gen_ai.tool.call.result"])
    return tree


if __name__ == "__main__":
    anyio.run(main)
