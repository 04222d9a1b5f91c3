"""Provider concurrency limits queue runs instead of failing them; one trace per run."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from masquerade import END, START, Graph, Host
from masquerade_dbos import DurableGraph
from masquerade_runway.emulator import RunwayEmulator

from ..otel_helpers import NO_BUILTIN_TRACING, Otel
from .avatar_graph import Call, avatar
from .graphs import Counting, counting

pytestmark = pytest.mark.anyio

SHORT = [{"say": "Hi"}, {"tool": "lookup", "args": {"n": 1}}, {"hangup": True}]


async def test_a_provider_limit_queues_runs_instead_of_failing_them(tmp_path: Path) -> None:
    limited = Graph(Call, name="limited").add_node("call", avatar)
    limited.add_edge(START, "call").add_edge("call", END)
    async with RunwayEmulator(script=SHORT) as emulator:
        durable = DurableGraph(
            limited,
            database_url=f"sqlite:///{tmp_path / 'runs.sqlite'}",
            host=Host(plugins=[emulator.provider()]),
            capacity=10,
            provider_limits={"runway": 1},
            polling_interval=0.05,
        )
        assert durable.global_limit == 1
        async with durable:
            runs = [await durable.submit(Call(name=f"r{i}")) for i in range(3)]
            finals = [await run.result() for run in runs]
    calls = sorted((f.call.started_at, f.call.ended_at) for f in finals if f.call)
    assert len(calls) == 3 and all(f.call and f.call.outcome == "completed" for f in finals)
    # one call at a time: each one ended before the next one started
    for (_, ended), (started, _) in itertools.pairwise(calls):
        assert ended <= started


async def test_one_trace_from_submission_through_the_queue_to_the_nodes(tmp_path: Path) -> None:
    otel = Otel()  # no global provider is touched
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    host = Host(plugins=[otel.plugin()], environ=NO_BUILTIN_TRACING)
    durable = DurableGraph(
        counting,
        database_url=url,
        polling_interval=0.05,
        host=host,
        tracer_provider=otel.tracer_provider,
    )
    async with durable:
        tracer = otel.tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("request") as request:
            run = await durable.submit(Counting())
        await run.result()
    trace_id = request.get_span_context().trace_id
    names = {span.name for span in otel.spans() if span.context.trace_id == trace_id}
    assert "masquerade.submit_run" in names
    assert any("first" in name for name in names), names
    assert any("second" in name for name in names), names
