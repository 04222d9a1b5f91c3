"""Recovery of live Runway calls: worker processes on Postgres, the emulator out of process.

Every scenario checks the same guarantees with the emulator's inventory
(``GET /_emulator/sessions``): exactly one provider session per run, none left running,
no tool call answered twice; and with the nodes' marks: steps completed before the crash
never ran again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from masquerade_dbos import DurableGraph, RunHandle

from .avatar_graph import Call, graph
from .workers import EmulatorProcess, WorkerProcess, marks, start_all, write_script

pytestmark = pytest.mark.anyio

LIVE = {"NOT_READY", "READY", "RUNNING"}
#: A call long enough to lose its worker in the middle: a tool call, a pause, another one.
CALL = [
    {"say": "Hello, which number?"},
    {"tool": "lookup", "args": {"n": 1}},
    {"wait": 4},
    {"tool": "lookup", "args": {"n": 2}},
    {"say": "Bye"},
    {"hangup": True},
]


async def wait_for(predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 60) -> None:
    with anyio.fail_after(timeout):
        while True:
            value = predicate()
            if not isinstance(value, bool):
                value = await value
            if value:
                return
            await anyio.sleep(0.05)


def checkpointed(runs: list[RunHandle[Any]], node: str, step: int) -> Callable[[], Awaitable[bool]]:
    """Whether every run has checkpointed the provider session of ``node`` (a crash
    before that is the one window where a session could be created twice)."""
    from dbos import DBOS

    async def check() -> bool:
        key = f"masquerade.session/{node}/{step}/1"
        for run in runs:
            if await DBOS.get_event_async(run.id, key, 0) is None:
                return False
        return True

    return check


def check_guarantees(emulator: EmulatorProcess, runs: int) -> list[dict[str, Any]]:
    sessions = emulator.sessions()
    assert len(sessions) == runs, "exactly one provider session per run"
    assert not [s for s in sessions if s["status"] in LIVE], "no session left running"
    for session in sessions:
        for call in session["toolCalls"]:
            assert call["answers"] <= 1, f"tool call answered twice: {call}"
    return sessions


def check_marks(path: Path, runs: list[RunHandle[Call]], names: list[str]) -> Counter[str]:
    counts = Counter(marks(path))
    for name in names:
        assert counts[f"{name}:before"] == 1, "a node completed before the crash ran again"
        assert counts[f"{name}:after"] == 1
    return counts


async def submit(durable: DurableGraph[Call], count: int) -> list[RunHandle[Call]]:
    return [await durable.submit(Call(name=f"r{i}")) for i in range(count)]


def answered(emulator: EmulatorProcess, minimum: int) -> Callable[[], bool]:
    def check() -> bool:
        sessions = emulator.sessions()
        done = [
            s for s in sessions
            if any(c["name"] == "lookup" and c["answers"] == 1 for c in s["toolCalls"])
        ]  # fmt: skip
        return len(done) >= minimum

    return check


async def test_a_worker_killed_mid_call_is_not_restarted_another_one_reattaches(
    postgres_url: str, tmp_path: Path
) -> None:
    marks_file = tmp_path / "marks"
    with EmulatorProcess(write_script(tmp_path / "call.json", CALL)) as emulator:
        env = {**emulator.env, "MASQUERADE_TEST_MARKS": str(marks_file)}
        a = WorkerProcess("avatar_graph.py", postgres_url, "worker-a", env=env, capacity=2)
        b = WorkerProcess("avatar_graph.py", postgres_url, "worker-b", env=env, capacity=2)
        try:
            start_all(a, b)
            async with DurableGraph(graph, database_url=postgres_url, worker=False) as submitter:
                runs = await submit(submitter, 4)
                await wait_for(answered(emulator, 4))  # every call is live, tool 1 answered
                on_a = [r for r in runs if await r.executor() == "worker-a"]
                assert len(on_a) == 2
                a.kill()
                finals = [await run.result() for run in runs]
                assert {await run.executor() for run in runs} == {"worker-b"}
            sessions = check_guarantees(emulator, 4)
            assert all(final.log == ["before", "after:completed"] for final in finals)
            ids = {final.call.provider_session_id for final in finals if final.call}
            assert ids == {s["id"] for s in sessions}
            counts = check_marks(marks_file, runs, [f"r{i}" for i in range(4)])
            # the interrupted calls were re-attached, not placed again
            assert sum(counts[f"r{i}:call"] for i in range(4)) == 4 + len(on_a)
            assert b.logged("re-attaching node call"), b.log()
        finally:
            a.stop()
            b.stop()


async def test_a_worker_restarted_under_its_id_takes_its_calls_back(
    postgres_url: str, tmp_path: Path
) -> None:
    marks_file = tmp_path / "marks"
    with EmulatorProcess(write_script(tmp_path / "call.json", CALL)) as emulator:
        env = {**emulator.env, "MASQUERADE_TEST_MARKS": str(marks_file)}
        # a long heartbeat timeout: nobody else recovers worker-a, its restart does
        args = {"env": env, "capacity": 4, "heartbeat_timeout": 120.0}
        a = WorkerProcess("avatar_graph.py", postgres_url, "worker-a", **args)  # type: ignore[arg-type]
        again = WorkerProcess("avatar_graph.py", postgres_url, "worker-a", **args)  # type: ignore[arg-type]
        try:
            a.start()
            async with DurableGraph(graph, database_url=postgres_url, worker=False) as submitter:
                runs = await submit(submitter, 3)
                await wait_for(answered(emulator, 3))
                a.kill()
                again.start()
                finals = [await run.result() for run in runs]
                assert {await run.executor() for run in runs} == {"worker-a"}
            check_guarantees(emulator, 3)
            assert all(final.log == ["before", "after:completed"] for final in finals)
            check_marks(marks_file, runs, [f"r{i}" for i in range(3)])
        finally:
            a.stop()
            again.stop()


async def test_a_crash_between_session_created_and_ready(
    postgres_url: str, tmp_path: Path
) -> None:
    marks_file = tmp_path / "marks"
    steps = [{"tool": "lookup", "args": {"n": 1}}, {"hangup": True}]
    script = write_script(tmp_path / "slow.json", steps, provisioning=4.0)
    with EmulatorProcess(script) as emulator:
        env = {**emulator.env, "MASQUERADE_TEST_MARKS": str(marks_file)}
        a = WorkerProcess("avatar_graph.py", postgres_url, "worker-a", env=env, capacity=1)
        b = WorkerProcess("avatar_graph.py", postgres_url, "worker-b", env=env, capacity=1)
        try:
            start_all(a, b)
            async with DurableGraph(graph, database_url=postgres_url, worker=False) as submitter:
                runs = await submit(submitter, 2)
                await wait_for(lambda: len(emulator.sessions()) == 2)
                await wait_for(checkpointed(runs, "call", 2))
                assert {s["status"] for s in emulator.sessions()} == {"NOT_READY"}
                assert sorted([await run.executor() for run in runs]) == ["worker-a", "worker-b"]
                a.kill()  # its session is created at the provider, not READY yet
                finals = [await run.result() for run in runs]
            check_guarantees(emulator, 2)
            assert all(final.log == ["before", "after:completed"] for final in finals)
            check_marks(marks_file, runs, ["r0", "r1"])
        finally:
            a.stop()
            b.stop()


async def test_a_crash_after_the_call_ended_before_the_next_node(
    postgres_url: str, tmp_path: Path
) -> None:
    marks_file = tmp_path / "marks"
    steps = [{"tool": "lookup", "args": {"n": 1}}, {"say": "Bye"}, {"hangup": True}]
    with EmulatorProcess(write_script(tmp_path / "short.json", steps)) as emulator:
        env = {**emulator.env, "MASQUERADE_TEST_MARKS": str(marks_file)}
        a = WorkerProcess(
            "avatar_graph.py", postgres_url, "worker-a", capacity=1,
            env={**env, "MASQUERADE_TEST_PAUSE": "60"},
        )  # fmt: skip
        b = WorkerProcess("avatar_graph.py", postgres_url, "worker-b", env=env, capacity=1)
        try:
            # One run per worker, whatever the machine's load: worker-a takes the first run
            # (and holds it: it pauses after the call) before worker-b starts, so worker-b
            # cannot finish its short call and take the second run too.
            a.start()
            async with DurableGraph(graph, database_url=postgres_url, worker=False) as submitter:
                runs = [await submitter.submit(Call(name="r0"))]
                await wait_for(lambda: "r0:before" in marks(marks_file))
                b.start()
                runs.append(await submitter.submit(Call(name="r1")))

                def ended() -> bool:
                    return sum(m.endswith(":call-ended") for m in marks(marks_file)) == 2

                await wait_for(ended)
                assert sorted([await run.executor() for run in runs]) == ["worker-a", "worker-b"]
                a.kill()  # its call is over, the node's output not yet checkpointed
                finals = [await run.result() for run in runs]
            sessions = check_guarantees(emulator, 2)
            assert {s["status"] for s in sessions} == {"COMPLETED"}
            for final in finals:
                assert final.log == ["before", "after:completed"]
                assert final.call is not None
                # collected from the conversation endpoint by the worker that took over
                said = [t.text for t in final.call.transcript if t.role == "assistant"]
                assert said[-1:] == ["Bye"]
            counts = check_marks(marks_file, runs, ["r0", "r1"])
            assert counts["tool:1"] == 2  # answered once per call, never again
            assert b.logged("re-attaching node call"), b.log()
        finally:
            a.stop()
            b.stop()
