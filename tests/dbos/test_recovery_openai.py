"""An OpenAI websocket session cannot be re-attached: its lost call fails the node
clearly (``worker_lost``) instead of silently placing a second call."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from masquerade_dbos import DurableGraph, RunFailed

from .openai_graph import Voice, graph
from .test_recovery_runway import wait_for
from .workers import EmulatorProcess, WorkerProcess, marks

pytestmark = pytest.mark.anyio


async def test_a_lost_websocket_call_fails_its_node_with_worker_lost(
    postgres_url: str, tmp_path: Path
) -> None:
    marks_file = tmp_path / "marks"
    with EmulatorProcess(None, provider="openai") as emulator:
        env = {**emulator.env, "MASQUERADE_TEST_MARKS": str(marks_file)}
        a = WorkerProcess("openai_graph.py", postgres_url, "worker-a", env=env)
        b = WorkerProcess("openai_graph.py", postgres_url, "worker-b", env=env)
        try:
            a.start()
            async with DurableGraph(graph, database_url=postgres_url, worker=False) as submitter:
                run = await submitter.submit(Voice())
                await wait_for(lambda: "ready" in marks(marks_file))
                a.kill()
                b.start()
                lost = r"WorkerLost: the openai session .* cannot re-attach"
                with pytest.raises(RunFailed, match=lost):
                    await run.result()
            assert Counter(marks(marks_file))["ready"] == 1  # no second call was placed
        finally:
            a.stop()
            b.stop()
