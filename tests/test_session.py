"""Session lifecycle, the event loop, backpressure and the exactly-once cancel path."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from masquerade import ProviderError, ProvisioningStatus, SessionRequest, tool
from masquerade.events import AudioDelta, BaseEvent, ErrorEvent, ToolCall
from masquerade.testing import ScriptedProvider


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def types(events: list[BaseEvent]) -> list[str]:
    return [e.type for e in events]


@pytest.mark.anyio
async def test_full_lifecycle_with_tool_calls(make_host: Any) -> None:
    provider = ScriptedProvider(
        [
            {"say": "Hi there"},
            {"say": "What is 2 plus 3?", "role": "user"},
            {"tool": "add", "args": {"a": 2, "b": 3}, "id": "call_1"},
            {"client_event": "show", "args": {"n": 5}},
            {"say": "Five."},
        ],
        queued_polls=1,
        not_ready_polls=1,
    )
    host = make_host(provider)
    seen: list[BaseEvent] = []
    async with host.session(SessionRequest(provider="scripted", tools=[add])) as session:
        async for event in session.events():
            seen.append(event)
    result = session.result
    assert result is not None
    assert result.outcome == "completed"
    states = [e.__dict__["state"] for e in seen if e.type == "status"]
    assert states[0] == "provisioning" and states[-2:] == ["ready", "running"]
    queued = [e for e in seen if e.type == "status" and e.__dict__["queued"]]
    assert len(queued) == 1
    assert types(seen)[-1] == "ended"
    ready = next(e for e in seen if e.type == "ready")
    assert ready.credentials is not None  # type: ignore[attr-defined]
    assert "scripted-session-key" not in repr(ready)
    assert [t.text for t in result.transcript] == ["Hi there", "What is 2 plus 3?", "Five."]
    assert result.tool_calls[0].output == 5
    assert result.client_events == [{"name": "show", "args": {"n": 5}}]
    assert provider.sessions[0].ended == ["completed"]
    assert provider.sessions[0].polls == 3
    assert session.state == "ended"


@pytest.mark.anyio
async def test_every_tool_call_gets_exactly_one_result(make_host: Any) -> None:
    provider = ScriptedProvider(
        [
            {"tool": "add", "args": {"a": 1, "b": 1}, "id": "x"},
            {"tool": "add", "args": {"a": 1, "b": 1}, "id": "x"},  # repeated id
            {"tool": "missing", "id": "y"},
            {"tool": "add", "args": "not json", "id": "z"},
        ]
    )
    host = make_host(provider)
    events: list[BaseEvent] = []
    result = await host.run_session(
        SessionRequest(provider="scripted", tools=[add]), on_event=events.append
    )
    results = [e for e in events if e.type == "tool.result"]
    assert sorted(e.call_id for e in results) == ["x", "y", "z"]  # type: ignore[attr-defined]
    answers = provider.sessions[0].answers
    assert answers[0] is answers[1]  # the repeated call got the first answer
    assert answers[2].error_type == "not_found" and "missing" in (answers[2].error or "")
    assert answers[3].error_type == "arguments"
    assert len(result.tool_calls) == 3


@pytest.mark.anyio
async def test_cancel_path_runs_once_on_normal_end(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "bye"}])
    await make_host(provider).run_session(SessionRequest(provider="scripted"))
    assert provider.sessions[0].ended == ["completed"]


@pytest.mark.anyio
async def test_cancel_path_runs_once_on_provider_error(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "hi"}, {"fail": "socket dropped", "code": "conn_lost"}])
    result = await make_host(provider).run_session(SessionRequest(provider="scripted"))
    assert result.outcome == "failed"
    assert result.failure == "socket dropped"
    assert result.failure_code == "conn_lost"
    assert result.transcript[0].text == "hi"  # nothing observed is lost
    assert provider.sessions[0].ended == ["error"]


@pytest.mark.anyio
async def test_cancel_path_runs_once_on_cancellation(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "hi"}], hold_open=True)
    host = make_host(provider)
    with anyio.move_on_after(0.3) as scope:
        await host.run_session(SessionRequest(provider="scripted"))
    assert scope.cancelled_caught
    assert provider.sessions[0].ended == ["cancelled"]


@pytest.mark.anyio
async def test_cancel_path_runs_once_on_deadline(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "hi"}], hold_open=True)
    result = await make_host(provider).run_session(
        SessionRequest(provider="scripted", max_duration=0.2)
    )
    assert result.outcome == "completed"
    assert result.reason == "deadline"
    assert provider.sessions[0].ended == ["deadline"]


@pytest.mark.anyio
async def test_end_from_user_code(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "hi"}], hold_open=True)
    async with make_host(provider).session(SessionRequest(provider="scripted")) as session:
        async for event in session.events():
            if event.type == "transcript.done":
                session.end("user hung up")
    assert session.result is not None
    assert session.result.reason == "user hung up"
    assert provider.sessions[0].ended == ["user hung up"]


@pytest.mark.anyio
async def test_leaving_the_block_early_ends_the_session(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "hi"}], hold_open=True)
    async with make_host(provider).session(SessionRequest(provider="scripted")) as session:
        async for event in session.events():
            if event.type == "running" or event.type == "transcript.done":
                break
    assert provider.sessions[0].ended == ["closed"]
    assert session.done


@pytest.mark.anyio
async def test_exception_in_the_body_still_runs_cancel_path(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "hi"}], hold_open=True)
    with pytest.raises(RuntimeError, match="app bug"):
        async with make_host(provider).session(SessionRequest(provider="scripted")) as session:
            async for event in session.events():
                if event.type == "transcript.done":
                    raise RuntimeError("app bug")
    assert len(provider.sessions[0].ended) == 1
    assert session.done


@pytest.mark.anyio
async def test_failing_cancel_path_still_ends_the_session(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "hi"}], end_error=ProviderError("DELETE failed"))
    events: list[BaseEvent] = []
    result = await make_host(provider).run_session(
        SessionRequest(provider="scripted"), on_event=events.append
    )
    assert result.outcome == "completed"
    assert any(e.type == "error" and e.code == "end_failed" for e in events)  # type: ignore[attr-defined]
    assert types(events)[-1] == "ended"


@pytest.mark.anyio
async def test_create_error_fails_without_cancel_path(make_host: Any) -> None:
    provider = ScriptedProvider(create_error=ProviderError("401 bad key", status_code=401))
    result = await make_host(provider).run_session(SessionRequest(provider="scripted"))
    assert result.outcome == "failed"
    assert "401 bad key" in (result.failure or "")
    assert provider.sessions == []


@pytest.mark.anyio
async def test_provisioning_timeout(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "never"}], queued_polls=10_000)
    result = await make_host(provider).run_session(
        SessionRequest(provider="scripted", provisioning_timeout=0.3)
    )
    assert result.outcome == "failed"
    assert "still waiting in the provider's queue" in (result.failure or "")
    assert provider.sessions[0].ended == ["error"]  # the queued session is cancelled
    assert not provider.sessions[0].connected


@pytest.mark.anyio
async def test_failed_while_provisioning_carries_failure_code(make_host: Any) -> None:
    status = ProvisioningStatus(
        state="failed",
        provider_status="FAILED",
        failure="no GPU",
        failure_code="INTERNAL.NO_CAPACITY",
    )
    provider = ScriptedProvider([{"say": "never"}], final_status=status)
    result = await make_host(provider).run_session(SessionRequest(provider="scripted"))
    assert result.outcome == "failed"
    assert result.failure_code == "INTERNAL.NO_CAPACITY"
    assert "no GPU" in (result.failure or "")


@pytest.mark.anyio
async def test_malformed_and_unknown_events(make_host: Any) -> None:
    provider = ScriptedProvider(
        [
            {"event": "{not json"},
            {"event": {"type": "transcript.done", "role": "robot", "text": 1}},
            {"event": {"type": "brand.new.event", "x": 1}},
            {"say": "still here"},
        ]
    )
    events: list[BaseEvent] = []
    result = await make_host(provider).run_session(
        SessionRequest(provider="scripted"), on_event=events.append
    )
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert [e.code for e in errors] == ["malformed_event", "malformed_event"]
    assert "role" in errors[1].message
    assert any(e.type == "provider" and e.name == "brand.new.event" for e in events)  # type: ignore[attr-defined]
    assert result.outcome == "completed"
    assert result.transcript[-1].text == "still here"


@pytest.mark.anyio
async def test_fatal_error_event_ends_the_session(make_host: Any) -> None:
    provider = ScriptedProvider(
        [{"event": {"type": "error", "message": "quota", "code": "quota", "fatal": True}}],
        hold_open=True,
    )
    result = await make_host(provider).run_session(SessionRequest(provider="scripted"))
    assert result.outcome == "failed"
    assert result.failure_code == "quota"
    assert provider.sessions[0].ended == ["error"]


@pytest.mark.anyio
async def test_several_subscribers_and_late_replay(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "one"}, {"wait": 0.05}, {"say": "two"}])
    firsts: list[str] = []
    seconds: list[str] = []
    async with make_host(provider).session(SessionRequest(provider="scripted")) as session:

        async def read(into: list[str]) -> None:
            async for event in session.events():
                if event.type == "transcript.done":
                    into.append(event.text)  # type: ignore[attr-defined]

        async with anyio.create_task_group() as tg:
            tg.start_soon(read, firsts)
            await anyio.sleep(0.02)  # subscribe late: replay delivers what was missed
            tg.start_soon(read, seconds)
    assert firsts == seconds == ["one", "two"]


@pytest.mark.anyio
async def test_backpressure_drops_only_audio(make_host: Any) -> None:
    provider = ScriptedProvider([{"audio": 2000, "bytes": 10}, {"say": "kept"}, {"audio": 10}])
    host = make_host(provider)
    async with host.session(SessionRequest(provider="scripted")) as session:
        stream = session.events()
        stream.__aiter__()  # subscribed, but reads nothing until the call is over
        await session.wait()
        got = [e async for e in stream]
    audio = [e for e in got if isinstance(e, AudioDelta)]
    assert session.dropped_audio > 0
    assert len(audio) + session.dropped_audio == 2010
    assert stream.dropped_audio == session.dropped_audio
    assert any(e.type == "transcript.done" for e in got)
    assert types(got)[-1] == "ended"
    assert session.result is not None and session.result.dropped_audio == session.dropped_audio


@pytest.mark.anyio
async def test_publish_waits_for_a_lagging_subscriber(make_host: Any) -> None:
    # With a tiny max_buffer the provider's publish() must wait for the slow reader:
    # nothing is dropped and the reader gets every audio delta.
    provider = ScriptedProvider([{"audio": 50, "bytes": 10}])
    host = make_host(provider)
    async with host.session(SessionRequest(provider="scripted")) as session:
        session.max_buffer = 4
        audio = 0
        async for event in session.events(replay=False):
            if event.type == "audio.delta":
                audio += 1
            await anyio.sleep(0.001)
    assert audio == 50
    assert session.dropped_audio == 0


@pytest.mark.anyio
async def test_call_tool_cancelled_still_answers(make_host: Any) -> None:
    started = anyio.Event()

    @tool(timeout=7)
    async def slow() -> str:
        """Takes forever."""
        started.set()
        await anyio.sleep(30)
        return "late"

    provider = ScriptedProvider([{"tool": "slow", "id": "s1"}])
    host = make_host(provider)
    events: list[BaseEvent] = []
    async with host.session(
        SessionRequest(provider="scripted", tools=[slow]), on_event=events.append
    ) as session:
        await started.wait()
        session.end("hangup")
    results = [e for e in events if e.type == "tool.result"]
    assert len(results) == 1
    assert results[0].error_type == "cancelled"  # type: ignore[attr-defined]
    assert session.result is not None
    assert session.result.tool_calls[0].error_type == "cancelled"


@pytest.mark.anyio
async def test_tool_name_clash_with_plugin_tool(make_host: Any) -> None:
    from masquerade import ToolDefinitionError, hookimpl

    @tool(name="add")
    def other_add(a: int) -> int:
        """Different."""
        return a

    class Offers:
        @hookimpl
        def masquerade_register_tools(self, register: Any) -> None:
            register(other_add)

    host = make_host(ScriptedProvider(), Offers())
    with pytest.raises(ToolDefinitionError, match="clashes"):
        async with host.session(SessionRequest(provider="scripted", tools=[add])):
            pass


def test_duplicate_tool_names_in_request() -> None:
    from masquerade import ToolDefinitionError

    with pytest.raises(ToolDefinitionError, match="two tools are named 'add'"):
        SessionRequest(provider="x", tools=[add, add.fn])


def test_emit_after_end_is_ignored() -> None:
    call = ToolCall(call_id="1", name="x")
    assert call.type == "tool.call"


def test_session_ids_are_unique_and_a_forked_child_draws_its_own_prefix() -> None:
    import os
    import re

    from masquerade import Host
    from masquerade.session import Session

    host = Host(load_entrypoints=False)
    ids = {Session(host, SessionRequest(provider="none")).id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"ses_[0-9a-f]{16,}", i) for i in ids)
    if not hasattr(os, "fork"):
        return
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id, written back, then out without cleanup
        try:
            os.write(write, Session(host, SessionRequest(provider="none")).id.encode())
        finally:
            os._exit(0)
    os.close(write)
    import select

    ready, _, _ = select.select([read], [], [], 30)  # bounded: a stuck child fails the test
    assert ready, "the forked child wrote no id"
    child_id = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent_next = Session(host, SessionRequest(provider="none")).id
    assert child_id.startswith("ses_")
    assert child_id[4:14] != parent_next[4:14]  # not the parent's prefix


@pytest.mark.anyio
async def test_wait_changed_follows_the_state_and_returns_at_once_when_ended(
    make_host: Any,
) -> None:
    host = make_host(ScriptedProvider([{"say": "hi"}], not_ready_polls=2, hold_open=True))
    seen: list[str] = []
    async with host.session(SessionRequest(provider="scripted")) as session:
        assert session.state == "created"
        with anyio.fail_after(10):
            while session.state != "running":
                await session.wait_changed()
                seen.append(session.state)
            # Woken for the provider session id too (known while still provisioning).
            assert session.provider_session_id is not None
            waiter_done = anyio.Event()

            async def wait_for_the_end() -> None:
                await session.wait_changed()
                waiter_done.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_for_the_end)
                await anyio.sleep(0.05)
                assert not waiter_done.is_set()  # nothing changed: still waiting
                session.end()
                await waiter_done.wait()
    assert seen[-1] == "running"
    assert set(seen) <= {"provisioning", "ready", "running"}
    with anyio.fail_after(1):
        await session.wait_changed()  # ended: returns at once
    assert session.state == "ended"
