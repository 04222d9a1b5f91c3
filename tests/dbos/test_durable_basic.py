"""Durable runs in one process: SQLite (the embedded default) and Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest

from masquerade_dbos import DurableGraph, NotAsyncio, RunFailed

from .graphs import Counting, counting

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_run_completes_and_is_idempotent(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'runs.sqlite'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    async with DurableGraph(counting, database_url=url, polling_interval=0.05) as durable:
        run = await durable.submit(Counting(name="grace"), idempotency_key="order-1")
        final = await run.result()
        assert final.log == ["first:grace", "second"]
        assert final.total == 11
        again = await durable.submit({"name": "other"}, idempotency_key="order-1")
        assert again.id == run.id
        assert (await again.result()).log == ["first:grace", "second"]
        assert await run.status() == "SUCCESS"


async def test_a_failing_node_fails_the_run(tmp_path: Path) -> None:
    from masquerade import END, START, Graph

    def boom(state: Counting) -> None:
        raise ValueError("no stock")

    graph = Graph(Counting, name="failing").add_node("boom", boom)
    graph.add_edge(START, "boom").add_edge("boom", END)
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    async with DurableGraph(graph, database_url=url, polling_interval=0.05) as durable:
        run = await durable.submit()
        with pytest.raises(RunFailed, match="no stock"):
            await run.result()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_refused_clearly(tmp_path: Path) -> None:
    durable = DurableGraph(counting, database_url=f"sqlite:///{tmp_path / 'x.sqlite'}")
    with pytest.raises(NotAsyncio, match="asyncio"):
        async with durable:
            pass
