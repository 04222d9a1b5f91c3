"""The tracing plugin does no span work while nothing listens (no SDK, no providers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace

from masquerade import SessionRequest, tool
from masquerade.builtin.tracing import Tracing
from masquerade.builtin.tracing import _plugin as tracing_plugin
from masquerade.testing import ScriptedProvider

from .otel_helpers import NO_BUILTIN_TRACING, Otel


@tool
async def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@pytest.fixture
def otel() -> Iterator[Otel]:
    handle = Otel()
    yield handle
    handle.shutdown()


SCRIPT: list[dict[str, Any]] = [{"say": "hi"}, {"tool": "add", "args": {"a": 2, "b": 3}}]


class Counting(Tracing):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.started = 0
        self.traced_tools = 0

    def _start(self, session: Any) -> Any:
        self.started += 1
        return super()._start(session)

    async def _traced_tool(self, call: Any, session: Any, inner: Any) -> Any:
        self.traced_tools += 1
        return await super()._traced_tool(call, session, inner)


async def session_with_a_tool(make_host: Any, plugin: Tracing) -> None:
    host = make_host(plugin, ScriptedProvider(SCRIPT), environ=NO_BUILTIN_TRACING)
    async with host:
        result = await host.run_session(SessionRequest(provider="scripted", tools=[add]))
    assert result.outcome == "completed"
    assert [r.output for r in result.tool_calls] == [5]


@pytest.mark.anyio
async def test_no_spans_are_built_while_no_provider_listens(
    make_host: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracing_plugin.trace, "get_tracer_provider", trace.NoOpTracerProvider)
    monkeypatch.setattr(tracing_plugin.metrics, "get_meter_provider", metrics.NoOpMeterProvider)
    plugin = Counting()
    await session_with_a_tool(make_host, plugin)
    assert (plugin.started, plugin.traced_tools) == (0, 0)
    assert not plugin.listening()
    assert not plugin._untraced  # forgotten when the session ended


@pytest.mark.anyio
async def test_a_global_provider_set_later_traces_the_next_session(
    make_host: Any, monkeypatch: pytest.MonkeyPatch, otel: Otel
) -> None:
    monkeypatch.setattr(tracing_plugin.trace, "get_tracer_provider", trace.NoOpTracerProvider)
    monkeypatch.setattr(tracing_plugin.metrics, "get_meter_provider", metrics.NoOpMeterProvider)
    plugin = Counting()
    await session_with_a_tool(make_host, plugin)
    assert (plugin.started, plugin.traced_tools) == (0, 0)
    monkeypatch.setattr(
        tracing_plugin.trace, "get_tracer_provider", lambda: otel.tracer_provider
    )
    await session_with_a_tool(make_host, plugin)
    assert (plugin.started, plugin.traced_tools) == (1, 1)


@pytest.mark.anyio
async def test_providers_passed_in_always_listen(make_host: Any, otel: Otel) -> None:
    plugin = Counting(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    await session_with_a_tool(make_host, plugin)
    assert (plugin.started, plugin.traced_tools) == (1, 1)
    assert [s.name for s in otel.spans() if s.name.startswith("execute_tool")] == [
        "execute_tool add"
    ]
