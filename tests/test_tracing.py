"""The tracing plugin: span trees, attributes, content capture and metrics, read back from
the OpenTelemetry SDK's in-memory exporter and reader."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from masquerade import (
    END,
    START,
    AvatarNode,
    Graph,
    NodeError,
    SessionRequest,
    SessionResult,
    hookimpl,
    tool,
)
from masquerade.builtin import tracing
from masquerade.testing import ScriptedProvider

from .otel_helpers import NO_BUILTIN_TRACING, Otel, every_string


@pytest.fixture
def otel() -> Iterator[Otel]:
    handle = Otel()
    yield handle
    handle.shutdown()


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number."""
    return {"order_id": order_id, "status": "shipped"}


@tool
def cancel_order(order_id: str) -> str:
    """Cancel an order."""
    raise PermissionError(f"order {order_id} cannot be cancelled")


@tool(timeout=0.05)
async def book_slot(day: str) -> str:
    """Book a delivery slot."""
    await anyio.sleep(5)
    return day


TOOL_SCRIPT: list[dict[str, Any]] = [
    {"say": "Hello, how can I help?"},
    {"say": "Where is order 42?", "role": "user"},
    {"tool": "lookup_order", "args": {"order_id": "42"}, "id": "call_ok"},
    {"tool": "cancel_order", "args": {"order_id": "42"}, "id": "call_err"},
    {"tool": "book_slot", "args": {"day": "Sunday"}, "id": "call_slow"},
    {"tool": "no_such_tool", "args": {}, "id": "call_missing"},
    {"say": "It has shipped."},
]
TOOLS = [lookup_order, cancel_order, book_slot]


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def run(make_host: Any, otel: Otel, script: list[dict[str, Any]], **kwargs: Any) -> Any:
    capture = kwargs.pop("capture_content", None)
    provider_kwargs = kwargs.pop("provider_kwargs", {})
    host = make_host(
        otel.plugin(capture_content=capture),
        ScriptedProvider(script, **provider_kwargs),
        environ=NO_BUILTIN_TRACING,
    )
    request = SessionRequest(provider="scripted", **kwargs)
    async with host:
        return await host.run_session(request)


@pytest.mark.anyio
async def test_one_trace_per_session_with_tool_spans(make_host: Any, otel: Otel) -> None:
    result = await run(make_host, otel, TOOL_SCRIPT, name="concierge", tools=TOOLS)
    assert result.outcome == "completed"
    spans = otel.spans()
    root = otel.one("invoke_agent concierge")
    assert root.parent is None
    assert root.kind is SpanKind.CLIENT
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    attrs = dict(root.attributes or {})
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.provider.name"] == "scripted"
    assert attrs["gen_ai.agent.name"] == "concierge"
    assert attrs["gen_ai.conversation.id"] == result.provider_session_id == "scripted-1"
    assert attrs["gen_ai.realtime_session.id"] == result.session_id
    assert attrs["masquerade.session.outcome"] == "completed"
    assert attrs["masquerade.session.tool_calls"] == 4
    assert root.status.status_code is StatusCode.UNSET
    assert root.instrumentation_scope is not None
    assert root.instrumentation_scope.name == "masquerade"
    assert root.instrumentation_scope.version

    tools = {s.attributes["gen_ai.tool.call.id"]: s for s in otel.named("execute_tool ")}  # type: ignore[index]
    assert set(tools) == {"call_ok", "call_err", "call_slow", "call_missing"}
    for span in tools.values():
        assert span.kind is SpanKind.INTERNAL
        assert span.parent is not None
        assert span.parent.span_id == root.context.span_id
        assert span.attributes["gen_ai.operation.name"] == "execute_tool"  # type: ignore[index]
        assert span.attributes["gen_ai.tool.type"] == "function"  # type: ignore[index]
    ok = tools["call_ok"]
    assert ok.name == "execute_tool lookup_order"
    assert ok.attributes["gen_ai.tool.name"] == "lookup_order"  # type: ignore[index]
    assert ok.attributes["gen_ai.tool.description"] == "Look up an order by its number."  # type: ignore[index]
    assert "error.type" not in ok.attributes  # type: ignore[operator]
    assert ok.status.status_code is StatusCode.UNSET
    expected_errors = {"call_err": "exception", "call_slow": "timeout", "call_missing": "not_found"}
    for call_id, error_type in expected_errors.items():
        span = tools[call_id]
        assert span.status.status_code is StatusCode.ERROR, call_id
        assert span.attributes["error.type"] == error_type  # type: ignore[index]
    # Capture is off: neither arguments nor results nor the tool's error text are recorded.
    for span in tools.values():
        assert "gen_ai.tool.call.arguments" not in span.attributes  # type: ignore[operator]
        assert "gen_ai.tool.call.result" not in span.attributes  # type: ignore[operator]
        assert not any("cannot be cancelled" in s for s in every_string(span))

    responses = otel.named("realtime_inference")
    assert len(responses) == 2
    assert all(r.parent and r.parent.span_id == root.context.span_id for r in responses)
    assert all(r.attributes["gen_ai.response.finish_reasons"] == ("completed",)  # type: ignore[index]
               for r in responses)
    assert sorted(s.name for s in children(spans, root)) == sorted(
        [s.name for s in tools.values()] + [r.name for r in responses]
    )


@pytest.mark.anyio
async def test_status_queue_and_readiness_are_span_events(make_host: Any, otel: Otel) -> None:
    await run(
        make_host, otel, [{"say": "hi"}], avatar="cooking-teacher", model="gwm1_avatars",
        provider_kwargs={"queued_polls": 2, "not_ready_polls": 1},
    )
    root = otel.one("invoke_agent cooking-teacher")
    assert root.attributes["gen_ai.request.model"] == "gwm1_avatars"  # type: ignore[index]
    assert root.attributes["masquerade.session.avatar"] == "cooking-teacher"  # type: ignore[index]
    names = [e.name for e in root.events]
    assert names.count("masquerade.session.queued") == 1
    assert names.count("masquerade.session.ready") == 1
    assert names.index("masquerade.session.queued") < names.index("masquerade.session.ready")
    ready = next(e for e in root.events if e.name == "masquerade.session.ready")
    assert ready.attributes["masquerade.waited_s"] >= 0  # type: ignore[index, operator]
    assert ready.attributes["masquerade.queue_wait_s"] > 0  # type: ignore[index, operator]
    states = [
        e.attributes["masquerade.session.state"]  # type: ignore[index]
        for e in root.events
        if e.name == "masquerade.session.status"
    ]
    assert states[0] == "provisioning"
    assert states[-2:] == ["ready", "running"]
    # The join credentials (a secret session key) never reach the span.
    assert not any("scripted-session-key" in s for s in every_string(root))
    assert len(otel.points("masquerade.session.queue.duration")) == 1
    assert otel.points("masquerade.session.provisioning.duration")[0].count == 1


@pytest.mark.anyio
async def test_interrupted_response_is_not_an_error(make_host: Any, otel: Otel) -> None:
    script: list[dict[str, Any]] = [
        {"event": {"type": "response.started", "response_id": "resp_a"}},
        {"event": {
            "type": "response.done", "response_id": "resp_a", "status": "cancelled",
            "reason": "turn_detected", "usage": {"input_tokens": 120, "output_tokens": 7},
        }},
        {"event": {"type": "response.started", "response_id": "resp_b"}},
        {"event": {"type": "response.done", "response_id": "resp_b", "status": "failed",
                   "reason": "server_error"}},
        {"event": {"type": "response.done", "response_id": "never_started"}},
        {"event": {"type": "response.started", "response_id": "resp_c"}},
    ]
    await run(make_host, otel, script, model="gpt-realtime")
    responses = {s.attributes["gen_ai.response.id"]: s for s in otel.named("realtime_inference")}  # type: ignore[index]
    assert set(responses) == {"resp_a", "resp_b", "resp_c"}  # no span for an unseen start
    cancelled = responses["resp_a"]
    assert cancelled.name == "realtime_inference gpt-realtime"
    assert cancelled.kind is SpanKind.CLIENT
    assert cancelled.status.status_code is StatusCode.UNSET
    assert cancelled.attributes["gen_ai.response.finish_reasons"] == ("turn_detected",)  # type: ignore[index]
    assert cancelled.attributes["masquerade.response.status"] == "cancelled"  # type: ignore[index]
    assert cancelled.attributes["gen_ai.usage.input_tokens"] == 120  # type: ignore[index]
    assert cancelled.attributes["gen_ai.usage.output_tokens"] == 7  # type: ignore[index]
    failed = responses["resp_b"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "server_error"  # type: ignore[index]
    cut_off = responses["resp_c"]  # still open when the session ended
    assert cut_off.attributes["gen_ai.response.finish_reasons"] == ("session_closed",)  # type: ignore[index]
    tokens = {
        p.attributes["gen_ai.token.type"]: p.sum for p in otel.points("gen_ai.client.token.usage")
    }
    assert tokens == {"input": 120, "output": 7}


@pytest.mark.anyio
async def test_content_capture_is_off_by_default(
    make_host: Any, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(tracing.CAPTURE_CONTENT_ENV, raising=False)
    await run(
        make_host, otel, [*TOOL_SCRIPT, {"client_event": "show_map", "args": {"city": "Oslo"}}],
        tools=TOOLS, personality="You are Pat, the secret-recipe concierge.",
    )
    texts = [t for span in otel.spans() for t in every_string(span)]
    for content in ("Hello, how can I help?", "Where is order 42?", "shipped", "Oslo",
                    "secret-recipe", "Sunday"):
        assert not any(content in t for t in texts), content
    root = otel.one("invoke_agent")
    assert "gen_ai.input.messages" not in root.attributes  # type: ignore[operator]
    assert "gen_ai.system_instructions" not in root.attributes  # type: ignore[operator]
    client = next(e for e in root.events if e.name == "masquerade.session.client_event")
    assert client.attributes == {"masquerade.event.name": "show_map"}


@pytest.mark.anyio
@pytest.mark.parametrize("switch", ["argument", "environment"])
async def test_content_capture_on(
    make_host: Any, otel: Otel, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    if switch == "environment":
        monkeypatch.setenv(tracing.CAPTURE_CONTENT_ENV, "1")
        capture = None
    else:
        monkeypatch.setenv(tracing.CAPTURE_CONTENT_ENV, "0")
        capture = True
    await run(
        make_host, otel, TOOL_SCRIPT, tools=TOOLS, capture_content=capture,
        personality="You are Pat.",
    )
    root = otel.one("invoke_agent")
    assert '"content": "You are Pat."' in root.attributes["gen_ai.system_instructions"]  # type: ignore[index, operator]
    assert "Where is order 42?" in root.attributes["gen_ai.input.messages"]  # type: ignore[index, operator]
    assert "It has shipped." in root.attributes["gen_ai.output.messages"]  # type: ignore[index, operator]
    transcript = [e for e in root.events if e.name == "masquerade.transcript"]
    assert [e.attributes["role"] for e in transcript] == ["assistant", "user", "assistant"]  # type: ignore[index]
    tools = {s.attributes["gen_ai.tool.call.id"]: s for s in otel.named("execute_tool ")}  # type: ignore[index]
    ok = tools["call_ok"].attributes
    assert ok["gen_ai.tool.call.arguments"] == '{"order_id": "42"}'  # type: ignore[index]
    assert ok["gen_ai.tool.call.result"] == '{"order_id": "42", "status": "shipped"}'  # type: ignore[index]
    failed = tools["call_err"]
    assert failed.status.description == "order 42 cannot be cancelled"
    assert "cannot be cancelled" in failed.attributes["gen_ai.tool.call.result"]  # type: ignore[index, operator]
    first_response = min(otel.named("realtime_inference"), key=lambda s: s.start_time or 0)
    assert "Hello, how can I help?" in first_response.attributes["gen_ai.output.messages"]  # type: ignore[index, operator]


@pytest.mark.anyio
async def test_tool_runs_inside_its_span(make_host: Any, otel: Otel) -> None:
    seen: dict[str, Any] = {}
    app_tracer = otel.tracer_provider.get_tracer("app")

    @tool
    async def async_tool() -> str:
        """Async."""
        seen["async"] = trace.get_current_span().get_span_context()
        with app_tracer.start_as_current_span("db query"):
            await anyio.lowlevel.checkpoint()
        return "ok"

    @tool
    def sync_tool() -> str:
        """Runs in a worker thread."""
        seen["sync"] = trace.get_current_span().get_span_context()
        return "ok"

    await run(
        make_host, otel,
        [{"tool": "async_tool", "id": "a"}, {"tool": "sync_tool", "id": "s"}],
        tools=[async_tool, sync_tool],
    )
    spans = {s.name: s for s in otel.spans()}
    assert seen["async"] == spans["execute_tool async_tool"].context
    assert seen["sync"] == spans["execute_tool sync_tool"].context
    db = spans["db query"]
    assert db.parent is not None
    assert db.parent.span_id == spans["execute_tool async_tool"].context.span_id


@pytest.mark.anyio
async def test_cancelled_tool_is_not_an_error(make_host: Any, otel: Otel) -> None:
    @tool(timeout=5)
    async def wait_forever() -> str:
        """Never answers."""
        await anyio.sleep_forever()
        return ""

    result = await run(
        make_host, otel, [{"tool": "wait_forever", "id": "w"}], tools=[wait_forever],
        max_duration=0.1,
    )
    assert result.tool_calls[0].error_type == "cancelled"
    span = otel.one("execute_tool wait_forever")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["masquerade.tool.outcome"] == "cancelled"  # type: ignore[index]
    root = otel.one("invoke_agent")
    assert root.attributes["masquerade.session.reason"] == "deadline"  # type: ignore[index]


@pytest.mark.anyio
async def test_failed_session_has_error_status(make_host: Any, otel: Otel) -> None:
    result = await run(
        make_host, otel, [{"say": "hi"}, {"fail": "the connection dropped", "code": "net_down"}]
    )
    assert result.outcome == "failed"
    root = otel.one("invoke_agent")
    assert root.status.status_code is StatusCode.ERROR
    assert root.attributes["error.type"] == "net_down"  # type: ignore[index]
    assert "the connection dropped" in (root.status.description or "")
    failed = [
        p for p in otel.points("gen_ai.client.operation.duration")
        if p.attributes["gen_ai.operation.name"] == "invoke_agent"
    ]
    assert [p.attributes.get("error.type") for p in failed] == ["net_down"]


@pytest.mark.anyio
async def test_metrics(make_host: Any, otel: Otel) -> None:
    await run(make_host, otel, TOOL_SCRIPT, tools=TOOLS)
    durations = otel.points("gen_ai.client.operation.duration")
    by_op: dict[str, int] = {}
    for point in durations:
        op = point.attributes["gen_ai.operation.name"]
        by_op[op] = by_op.get(op, 0) + point.count
        assert point.attributes["gen_ai.provider.name"] == "scripted"
    assert by_op == {"invoke_agent": 1, "execute_tool": 4, "realtime_inference": 2}
    failed_tools = sorted(
        p.attributes["error.type"]
        for p in durations
        if p.attributes["gen_ai.operation.name"] == "execute_tool" and "error.type" in p.attributes
    )
    assert failed_tools == ["exception", "not_found", "timeout"]
    per_tool = {
        p.attributes["gen_ai.tool.name"] for p in otel.points("masquerade.tool.call.duration")
    }
    assert per_tool == {"lookup_order", "cancel_order", "book_slot", "no_such_tool"}
    assert [p.count for p in otel.points("masquerade.session.duration")] == [1]
    assert [p.value for p in otel.points("masquerade.session.active")] == [0]
    assert otel.points("gen_ai.client.token.usage") == []  # unknown usage is not reported
    # Metric attributes stay low-cardinality: no session, call or response ids.
    data = otel.reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    assert not any(k.endswith(".id") for k in point.attributes), metric.name


@pytest.mark.anyio
async def test_global_providers_are_untouched(make_host: Any) -> None:
    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    assert isinstance(tracer_provider, trace.ProxyTracerProvider)
    host = make_host(ScriptedProvider([{"say": "hi"}, {"tool": "lookup_order"}]))
    assert host.pm.get_plugin("tracing") is tracing  # the built-in is on by default
    async with host:
        result = await host.run_session(SessionRequest(provider="scripted", tools=TOOLS))
    assert result.outcome == "completed"
    assert trace.get_tracer_provider() is tracer_provider
    assert metrics.get_meter_provider() is meter_provider
    # Without an SDK provider the built-in records nothing and keeps no session state.
    assert not tracing.default.tracer.start_span("probe").is_recording()
    assert tracing.default._sessions == {}


class _Exploding(SpanProcessor):
    def __init__(self, where: str) -> None:
        self.where = where
        self.calls = 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.where == "start":
            self.calls += 1
            raise RuntimeError("processor on_start exploded")

    def on_end(self, span: Any) -> None:
        if self.where == "end":
            self.calls += 1
            raise RuntimeError("processor on_end exploded")


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["start", "end"])
async def test_a_failing_span_processor_never_breaks_a_session(make_host: Any, where: str) -> None:
    otel = Otel()
    exploding = _Exploding(where)
    otel.tracer_provider._active_span_processor._span_processors = (exploding,)
    result = await run(make_host, otel, TOOL_SCRIPT, tools=TOOLS)
    assert exploding.calls >= 7  # the session, four tools, two responses
    assert result.outcome == "completed"
    answers = {c.call_id: (c.output, c.error_type) for c in result.tool_calls}
    assert answers["call_ok"] == ({"order_id": "42", "status": "shipped"}, None)
    assert answers["call_slow"][1] == "timeout"
    assert [t.text for t in result.transcript][-1] == "It has shipped."


@pytest.mark.anyio
async def test_session_inside_node_and_workflow_spans(make_host: Any, otel: Otel) -> None:
    plugin = otel.plugin()
    host = make_host(plugin, ScriptedProvider([{"say": "hi"}]), environ=NO_BUILTIN_TRACING)
    async with host:
        with (
            tracing.workflow_span("support", host=host),
            tracing.node_span("concierge", graph="support", host=host),
        ):
            await host.run_session(SessionRequest(provider="scripted", name="pat"))
    workflow = otel.one("invoke_workflow support")
    node = otel.one("node concierge")
    agent = otel.one("invoke_agent pat")
    assert workflow.parent is None
    assert workflow.attributes["gen_ai.operation.name"] == "invoke_workflow"  # type: ignore[index]
    assert workflow.attributes["gen_ai.workflow.name"] == "support"  # type: ignore[index]
    assert node.parent is not None
    assert node.parent.span_id == workflow.context.span_id
    assert node.attributes["masquerade.graph.name"] == "support"  # type: ignore[index]
    assert agent.parent is not None
    assert agent.parent.span_id == node.context.span_id
    assert {workflow.context.trace_id, node.context.trace_id} == {agent.context.trace_id}


@pytest.mark.anyio
async def test_graph_spans_record_failures_but_not_cancellation(make_host: Any, otel: Otel) -> None:
    host = make_host(otel.plugin(), environ=NO_BUILTIN_TRACING)
    with pytest.raises(LookupError), tracing.workflow_span("flow", host=host):
        raise LookupError("no such customer")
    with anyio.move_on_after(0.01), tracing.node_span("waiting", host=host):
        await anyio.sleep_forever()
    failed = otel.one("invoke_workflow flow")
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "LookupError"  # type: ignore[index]
    assert [e.name for e in failed.events] == ["exception"]
    cancelled = otel.one("node waiting")
    assert cancelled.status.status_code is StatusCode.UNSET
    assert cancelled.attributes["gen_ai.agent.invocation.end_reason"] == "interrupted"  # type: ignore[index]


def test_graph_spans_follow_the_host_plugin(make_host: Any, otel: Otel) -> None:
    disabled = make_host(environ=NO_BUILTIN_TRACING)
    with tracing.workflow_span("flow", host=disabled) as span:
        assert not span.is_recording()
    enabled = make_host(otel.plugin(), environ=NO_BUILTIN_TRACING)
    with tracing.workflow_span("flow", host=enabled) as span:
        assert span.is_recording()
    assert [s.name for s in otel.spans()] == ["invoke_workflow flow"]


class _BlockedExporter(SpanExporter):
    """Exports only once released: a session that waited on export would never end."""

    def __init__(self, fail: bool) -> None:
        self.release = threading.Event()
        self.fail = fail
        self.exported: list[str] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.release.wait(10)
        if self.fail:
            raise ConnectionError("collector unreachable")
        self.exported.extend(s.name for s in spans)
        return SpanExportResult.SUCCESS


@pytest.mark.anyio
@pytest.mark.parametrize("fail", [False, True], ids=["slow", "failing"])
async def test_a_slow_or_failing_exporter_never_holds_up_a_session(
    make_host: Any, fail: bool
) -> None:
    otel = Otel()
    exporter = _BlockedExporter(fail)
    otel.tracer_provider._active_span_processor._span_processors = (
        BatchSpanProcessor(exporter, max_export_batch_size=1, schedule_delay_millis=1),
    )
    with anyio.fail_after(10):  # the exporter is still blocked when the session ends
        result = await run(make_host, otel, TOOL_SCRIPT, tools=TOOLS)
    assert result.outcome == "completed"
    assert exporter.exported == []
    exporter.release.set()
    otel.tracer_provider.shutdown()
    if not fail:
        assert "invoke_agent" in exporter.exported
        assert len(exporter.exported) == 7


class FlowState(BaseModel):
    call: SessionResult | None = None
    summary: str = ""


def summarize(state: FlowState) -> dict[str, Any]:
    assert state.call is not None
    return {"summary": f"{len(state.call.tool_calls)} tool call(s)"}


def explode(state: FlowState) -> dict[str, Any]:
    raise ValueError("the ticket system is down")


@pytest.mark.anyio
@pytest.mark.parametrize("fail", [False, True], ids=["ok", "node-fails"])
async def test_graph_run_is_the_parent_of_its_nodes_and_session(
    make_host: Any, otel: Otel, fail: bool
) -> None:
    host = make_host(otel.plugin(), ScriptedProvider(TOOL_SCRIPT[:3]), environ=NO_BUILTIN_TRACING)
    node = AvatarNode("scripted", name="concierge", tools=TOOLS, output_key="call")
    graph = Graph(FlowState, name="support-flow").add_node("concierge", node)
    graph.add_node("summarize", explode if fail else summarize)
    graph.add_edge(START, "concierge").add_edge("concierge", "summarize").add_edge("summarize", END)
    if fail:
        with pytest.raises(NodeError):
            await graph.run(FlowState(), host=host)
    else:
        final = await graph.run(FlowState(), host=host)
        assert final.summary == "1 tool call(s)"

    spans = otel.spans()
    workflow = otel.one("invoke_workflow support-flow")
    assert workflow.parent is None
    assert {s.context.trace_id for s in spans} == {workflow.context.trace_id}
    nodes = {s.name: s for s in children(spans, workflow)}
    assert set(nodes) == {"node concierge", "node summarize"}
    (agent,) = children(spans, nodes["node concierge"])
    assert agent.name == "invoke_agent concierge"
    tools = [s.name for s in children(spans, agent) if s.name.startswith("execute_tool")]
    assert tools == ["execute_tool lookup_order"]
    if fail:
        failed = nodes["node summarize"]
        assert failed.status.status_code is StatusCode.ERROR
        assert failed.attributes["error.type"] == "ValueError"  # type: ignore[index]
        assert workflow.status.status_code is StatusCode.ERROR
    else:
        assert workflow.status.status_code is StatusCode.UNSET


class _Retry:
    """A plugin wrapper that answers from a fallback when the tool fails."""

    @hookimpl(wrapper=True)
    def masquerade_tool_invoke(self, call: Any, session: Any) -> Any:
        inner = yield

        async def with_fallback() -> Any:
            result = await inner
            if result.error is None:
                return result
            return result.model_copy(update={"output": "fallback", "error": None,
                                             "error_type": None})

        return with_fallback()


@pytest.mark.anyio
async def test_tool_span_covers_other_plugins_wrappers(make_host: Any, otel: Otel) -> None:
    host = make_host(
        otel.plugin(), _Retry(), ScriptedProvider([TOOL_SCRIPT[3]]), environ=NO_BUILTIN_TRACING
    )
    async with host:
        result = await host.run_session(SessionRequest(provider="scripted", tools=TOOLS))
    assert result.tool_calls[0].output == "fallback"
    span = otel.one("execute_tool cancel_order")
    # The span records the answer the model got, after every wrapper.
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["masquerade.tool.outcome"] == "ok"  # type: ignore[index]
