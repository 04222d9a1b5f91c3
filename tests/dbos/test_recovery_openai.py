"""An OpenAI websocket session cannot be re-attached: its lost call fails the node
clearly (``worker_lost``) instead of silently placing a second call."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from masquerade_dbos import DurableGraph, RunFailed

from .openai_graph import Voice, graph
from .test_recovery_runway import checkpointed, wait_for
from .workers import EmulatorProcess, WorkerProcess, marks

pytestmark = pytest.mark.anyio


async def test_a_lost_websocket_call_fails_its_node_with_worker_lost(
    postgres_url: str, tmp_path: Path
) -> None:
    marks_file = tmp_path / "marks"
    # A call that stays live until the worker is killed (the default script hangs up by itself).
    script = tmp_path / "live.json"
    script.write_text(json.dumps({"opening": [{"say": "Hello."}]}))
    with EmulatorProcess(script, provider="openai") as emulator:
        env = {**emulator.env, "MASQUERADE_TEST_MARKS": str(marks_file)}
        a = WorkerProcess("openai_graph.py:graph", postgres_url, "worker-a", env=env)
        b = WorkerProcess("openai_graph.py:graph", postgres_url, "worker-b", env=env)
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


async def test_a_lost_sip_call_is_reattached_by_its_call_id(
    postgres_url: str, tmp_path: Path
) -> None:
    from masquerade_openai.emulator import OpenAIRealtimeEmulator

    from .openai_graph import Phone, phone

    with OpenAIRealtimeEmulator() as emulator:  # in this process: it outlives the workers
        env = {"OPENAI_BASE_URL": emulator.base_url, "OPENAI_API_KEY": emulator.api_key}
        a = WorkerProcess("openai_graph.py:phone", postgres_url, "worker-a", env=env)
        b = WorkerProcess("openai_graph.py:phone", postgres_url, "worker-b", env=env)
        call_id = emulator.new_call()
        await emulator.provider().calls().accept(call_id, {"model": "gpt-realtime"})

        def attached() -> int:
            return sum(c.query.get("call_id") == call_id for c in emulator.connections)

        def configured() -> int:
            # Sidebands whose handshake was answered: the client reads session.updated
            # before any close, so a hang-up after it happens during the call.
            return sum(
                c.query.get("call_id") == call_id and "session.updated" in c.server_events
                for c in emulator.connections
            )

        try:
            a.start()
            async with DurableGraph(phone, database_url=postgres_url, worker=False) as submitter:
                run = await submitter.submit(Phone(call_id=call_id))
                await wait_for(lambda: attached() == 1)
                await wait_for(checkpointed([run], "answer", 1))
                a.kill()
                b.start()
                await wait_for(lambda: attached() == 2)  # the same call, a new sideband
                await wait_for(lambda: configured() == 2)  # hang up during the call
                emulator.caller_hangs_up(call_id)
                final = await run.result()
            assert final.call is not None and final.call.outcome == "completed"
            assert list(emulator.calls) == [call_id]  # no second call was placed
            assert b.logged("re-attaching node answer"), b.log()
        finally:
            a.stop()
            b.stop()
