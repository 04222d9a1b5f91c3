"""Node retry policies in durable runs: attempts are steps, counted across crashes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from masquerade_dbos import DurableGraph

from .retry_graph import Flaky, graph
from .test_recovery_runway import wait_for
from .workers import WorkerProcess, marks, start_all

pytestmark = pytest.mark.anyio


async def test_a_failed_attempt_is_retried_in_a_durable_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks_file = tmp_path / "marks"
    monkeypatch.setenv("MASQUERADE_TEST_MARKS", str(marks_file))
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    async with DurableGraph(graph, database_url=url, polling_interval=0.05) as durable:
        final = await (await durable.submit(Flaky(name="r"))).result()
    assert final.result == "attempt 2"
    assert marks(marks_file) == ["r:attempt:1", "r:attempt:2"]


async def test_attempts_are_counted_across_a_crash(postgres_url: str, tmp_path: Path) -> None:
    marks_file = tmp_path / "marks"
    env = {"MASQUERADE_TEST_MARKS": str(marks_file), "MASQUERADE_TEST_BACKOFF": "3"}
    a = WorkerProcess("retry_graph.py", postgres_url, "worker-a", env=env)
    b = WorkerProcess("retry_graph.py", postgres_url, "worker-b", env=env)
    try:
        start_all(a, b)
        async with DurableGraph(graph, database_url=postgres_url, worker=False) as submitter:
            run = await submitter.submit(Flaky(name="r"))
            await wait_for(lambda: "r:attempt:1" in marks(marks_file))
            holder, other = (a, b) if await run.executor() == "worker-a" else (b, a)
            holder.kill()  # during the backoff after the failed first attempt
            final = await run.result()
            assert await run.executor() == other.executor_id
        assert final.result == "attempt 2"
        # the failed attempt was not run again: the next worker went on with attempt 2
        assert Counter(marks(marks_file)) == {"r:attempt:1": 1, "r:attempt:2": 1}
    finally:
        a.stop()
        b.stop()
