"""Worker processes on a real Postgres: a killed worker's runs finish on another one."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import anyio
import pytest

from masquerade_dbos import DurableGraph

from .graphs import Slow, slow
from .workers import WorkerProcess, marks, start_all

pytestmark = pytest.mark.anyio


async def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    with anyio.fail_after(timeout):
        while not await predicate():  # noqa: ASYNC110 - polling another process
            await anyio.sleep(0.05)


async def test_a_killed_worker_s_runs_finish_elsewhere_without_rerunning_done_nodes(
    postgres_url: str, tmp_path: Path
) -> None:
    marks_file, gate = tmp_path / "marks", tmp_path / "gate"
    # Every run stays mid-node until the gate opens (after the kill), however slow the
    # machine: worker-a's runs are surely interrupted there.
    env = {"MASQUERADE_TEST_MARKS": str(marks_file), "MASQUERADE_TEST_GATE": str(gate)}
    a = WorkerProcess("graphs.py:slow", postgres_url, "worker-a", env=env, capacity=3)
    b = WorkerProcess("graphs.py:slow", postgres_url, "worker-b", env=env, capacity=3)
    try:
        start_all(a, b)
        async with DurableGraph(slow, database_url=postgres_url, worker=False) as submitter:
            runs = [await submitter.submit(Slow(name=f"r{i}")) for i in range(6)]

            async def all_mid_node() -> bool:
                started = {m.split(":")[0] for m in marks(marks_file) if m.endswith(":during")}
                return len(started) == len(runs)

            await _wait_for(all_mid_node)
            first = {run.id: await run.executor() for run in runs}
            # capacity 3 each: both workers hold runs when one of them dies
            assert sorted(first.values()) == ["worker-a"] * 3 + ["worker-b"] * 3
            a.kill()
            gate.touch()
            finals = [await run.result() for run in runs]
            assert {await run.executor() for run in runs} == {"worker-b"}
        assert all(final.log == ["before", "during", "after"] for final in finals)
        counts = Counter(marks(marks_file))
        for i, run in enumerate(runs):
            assert counts[f"r{i}:before"] == 1  # completed before the crash: never again
            # interrupted mid-node on the dead worker: that node runs again, once
            assert counts[f"r{i}:during"] == (2 if first[run.id] == "worker-a" else 1)
            assert counts[f"r{i}:after"] == 1
        assert b.logged("recovered by worker-b"), b.log()
    finally:
        a.stop()
        b.stop()


async def test_sigterm_drains_the_running_run_and_leaves_queued_ones(
    postgres_url: str, tmp_path: Path
) -> None:
    marks_file, gate = tmp_path / "marks", tmp_path / "gate"
    # The first run stays mid-node until worker-a is draining (then the gate opens).
    env = {"MASQUERADE_TEST_MARKS": str(marks_file), "MASQUERADE_TEST_GATE": str(gate)}
    a = WorkerProcess("graphs.py:slow", postgres_url, "worker-a", env=env, capacity=1)
    b = WorkerProcess("graphs.py:slow", postgres_url, "worker-b", env=env, capacity=1)
    try:
        a.start()
        async with DurableGraph(slow, database_url=postgres_url, worker=False) as submitter:
            first = await submitter.submit(Slow(name="first"))
            await _wait_for(_marked(marks_file, "first:during"))
            second = await submitter.submit(Slow(name="second"))
            assert a.process is not None
            a.process.send_signal(signal.SIGTERM)
            assert await anyio.to_thread.run_sync(a.logged, "draining"), a.log()
            gate.touch()
            assert await anyio.to_thread.run_sync(a.process.wait, 60) == 0
            assert await first.status() == "SUCCESS"  # finished before the worker left
            assert await second.status() == "ENQUEUED"  # never taken by a draining worker
            b.start()
            assert (await second.result()).log == ["before", "during", "after"]
            assert await second.executor() == "worker-b"
        assert Counter(marks(marks_file))["first:during"] == 1
    finally:
        a.stop()
        b.stop()


async def test_a_drain_that_runs_out_of_time_hands_the_run_back(
    postgres_url: str, tmp_path: Path
) -> None:
    marks_file, gate = tmp_path / "marks", tmp_path / "gate"
    # Both runs stay mid-node until worker-a handed them back (then the gate opens).
    env = {"MASQUERADE_TEST_MARKS": str(marks_file), "MASQUERADE_TEST_GATE": str(gate)}
    a = WorkerProcess(
        "graphs.py:slow", postgres_url, "worker-a", env=env, extra=("--drain-timeout", "0.2")
    )
    # the hand-back (heartbeat reset) lets worker-b take the run at its first beat
    b = WorkerProcess("graphs.py:slow", postgres_url, "worker-b", env=env, heartbeat_timeout=3)
    try:
        a.start()
        async with DurableGraph(slow, database_url=postgres_url, worker=False) as submitter:
            runs = [await submitter.submit(Slow(name=f"r{i}")) for i in range(2)]
            await _wait_for(_marked(marks_file, "r0:during", "r1:during"))
            held = [run for run in runs if await run.executor() == "worker-a"]
            assert len(held) == 2
            assert await anyio.to_thread.run_sync(a.terminate) == 0
            gate.touch()
            b.start()
            finals = [await run.result() for run in runs]
            assert {await run.executor() for run in runs} == {"worker-b"}
        assert all(final.log == ["before", "during", "after"] for final in finals)
        counts = Counter(marks(marks_file))
        assert sum(counts[f"r{i}:before"] for i in range(2)) == 2
        assert sum(counts[f"r{i}:during"] for i in range(2)) == 2 + len(held)
        assert a.logged("handing them back"), a.log()
    finally:
        a.stop()
        b.stop()


def _marked(path: Path, *wanted: str):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return set(wanted) <= set(marks(path))

    return check
