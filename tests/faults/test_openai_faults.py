"""Fault scenarios through the OpenAI Realtime emulator (a real websocket on loopback), on
asyncio and trio. Each scenario checks the guarantees of :mod:`tests.faults.harness`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

import masquerade_openai
from masquerade import Poller, Session, SessionRequest, hookimpl
from masquerade.events import BaseEvent
from masquerade_openai import OpenAIRealtimeProvider
from masquerade_openai.emulator import OpenAIRealtimeEmulator

from .harness import Run, check_openai, run_session, wait_for
from .tools import hanging_tool, lookup_order, quick_lookup

pytestmark = pytest.mark.anyio

Act = Callable[[Session, list[BaseEvent]], Awaitable[None]]


def request(**fields: Any) -> SessionRequest:
    fields.setdefault("provider", "openai")
    fields.setdefault("tools", [lookup_order, hanging_tool])
    fields.setdefault("end_timeout", 5.0)
    return SessionRequest(**fields)


def responses(events: list[BaseEvent], n: int) -> bool:
    return sum(1 for e in events if e.type == "response.done") >= n


def say(*texts: str, responses_each: int = 2, then: Callable[[], None] | None = None) -> Act:
    """Send each text and wait for its responses (a tool call makes two), then end."""

    async def act(session: Session, events: list[BaseEvent]) -> None:
        rt = await masquerade_openai.wait_realtime(session)
        done = 0
        for text in texts:
            await rt.send_text(text)
            done += responses_each
            await wait_for(lambda n=done: responses(events, n))  # type: ignore[misc]
        if then is not None:
            then()
        session.end("test done")

    return act


async def go(provider: OpenAIRealtimeProvider, poller: Poller, act: Act,
             req: SessionRequest | None = None, *plugins: object, **kwargs: Any) -> Run:
    return await run_session(req or request(), provider, *plugins, poller=poller, act=act,
                             **kwargs)


# ---------------------------------------------------------------- tool calls
async def test_o01_tool_call_answered_once(openai: OpenAIRealtimeEmulator,
                                           openai_provider: OpenAIRealtimeProvider,
                                           poller: Poller) -> None:
    run = await go(openai_provider, poller, say('call lookup_order {"order_id": "A1"}'))
    await check_openai(run, openai)
    assert [r.output for r in run.result.tool_calls] == [{"order_id": "A1", "status": "shipped"}]


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param("{order_id: A1", id="not-json"),
        pytest.param("[" * 50_000, id="deep-unbalanced"),
        pytest.param("[" * 3000 + "]" * 3000, id="deep-balanced"),
        pytest.param('{"order_id": ' + '{"a": ' * 200 + "1" + "}" * 201, id="deep-object"),
        pytest.param('"just a string"', id="json-not-object"),
    ],
)
async def test_o02_undecodable_arguments_are_still_answered(
        openai: OpenAIRealtimeEmulator, openai_provider: OpenAIRealtimeProvider,
        poller: Poller, arguments: str) -> None:
    run = await go(openai_provider, poller, say(f"call lookup_order {arguments}"))
    await check_openai(run, openai)
    [record] = run.result.tool_calls
    assert record.error_type == "arguments"


async def test_o03_unknown_tool_is_answered(openai: OpenAIRealtimeEmulator,
                                            openai_provider: OpenAIRealtimeProvider,
                                            poller: Poller) -> None:
    async def act(session: Session, events: list[BaseEvent]) -> None:
        await masquerade_openai.wait_realtime(session)
        openai.inject({"type": "response.output_item.done", "response_id": "resp_u",
                       "output_index": 0,
                       "item": {"id": "item_u", "type": "function_call", "status": "completed",
                                "call_id": "call_unknown", "name": "launch_rocket",
                                "arguments": '{"to": "moon"}'}})
        await wait_for(lambda: any(e.type == "tool.result" for e in events))
        session.end()

    run = await go(openai_provider, poller, act)
    await check_openai(run, openai)
    assert [r.error_type for r in run.result.tool_calls] == ["not_found"]


async def test_o04_tool_that_raises_is_answered(openai: OpenAIRealtimeEmulator,
                                                openai_provider: OpenAIRealtimeProvider,
                                                poller: Poller) -> None:
    run = await go(openai_provider, poller, say('call lookup_order {"order_id": "boom"}'))
    await check_openai(run, openai)
    assert "database is down" in (run.result.tool_calls[0].error or "")


async def test_o05_tool_that_hangs_is_answered_with_a_timeout(
        openai: OpenAIRealtimeEmulator, openai_provider: OpenAIRealtimeProvider,
        poller: Poller) -> None:
    run = await go(openai_provider, poller, say('call hanging_tool {"order_id": "A1"}'))
    await check_openai(run, openai)
    assert [r.error_type for r in run.result.tool_calls] == ["timeout"]


class HangingWrapper:
    """A ``masquerade_tool_invoke`` wrapper that never returns."""

    @hookimpl(wrapper=True)
    def masquerade_tool_invoke(self, call: Any, session: Any) -> Any:
        inner = yield

        async def hang() -> Any:
            inner.close() if hasattr(inner, "close") else None
            await anyio.sleep_forever()

        return hang()


async def test_o06_hanging_tool_invoke_wrapper_is_bounded_per_call(
        openai: OpenAIRealtimeEmulator, openai_provider: OpenAIRealtimeProvider,
        poller: Poller) -> None:
    run = await go(openai_provider, poller, say('call quick_lookup {"order_id": "A1"}'),
                   request(hook_timeout=0.3, tools=[quick_lookup]), HangingWrapper())
    await check_openai(run, openai)
    assert [r.error_type for r in run.result.tool_calls] == ["timeout"]


async def test_o07_repeated_function_call_is_answered_once(
        openai: OpenAIRealtimeEmulator, openai_provider: OpenAIRealtimeProvider,
        poller: Poller) -> None:
    async def act(session: Session, events: list[BaseEvent]) -> None:
        rt = await masquerade_openai.wait_realtime(session)
        await rt.send_text('call lookup_order {"order_id": "A1"}')
        await wait_for(lambda: responses(events, 2))
        item = next(i for i in rt.items() if i.type == "function_call")
        for _ in range(2):
            openai.inject({"type": "response.output_item.done", "response_id": "resp_x",
                           "output_index": 0,
                           "item": {"id": item.id, "type": "function_call",
                                    "status": "completed", "call_id": item.call_id,
                                    "name": "lookup_order", "arguments": item.arguments}})
        openai.inject({"type": "test.marker"})
        await wait_for(lambda: any(getattr(e, "name", None) == "test.marker" for e in events))
        session.end()

    run = await go(openai_provider, poller, act)
    await check_openai(run, openai)
    assert len(run.result.tool_calls) == 1


# ---------------------------------------------------------------- hostile frames
def inject_then_marker(*frames: Any) -> Act:
    async def act(session: Session, events: list[BaseEvent]) -> None:
        await masquerade_openai.wait_realtime(session)
        for frame in frames:
            openai_ref[0].inject(frame)
        openai_ref[0].inject({"type": "test.marker"})
        await wait_for(lambda: any(getattr(e, "name", None) == "test.marker" for e in events))
        session.end()

    return act


openai_ref: list[OpenAIRealtimeEmulator] = []


@pytest.fixture(autouse=True)
def _remember(openai: OpenAIRealtimeEmulator) -> Any:
    openai_ref[:] = [openai]
    yield
    openai_ref.clear()


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param({"type": "response.output_audio_transcript.delta", "item_id": "i1",
                      "delta": 42}, id="delta-number"),
        pytest.param({"type": "response.output_audio_transcript.delta", "item_id": "i1",
                      "delta": ["a", "list"]}, id="delta-list"),
        pytest.param({"type": "conversation.item.input_audio_transcription.completed",
                      "item_id": {"x": 1}, "transcript": "hi"}, id="turn-object"),
        pytest.param({"type": "response.output_audio.delta", "item_id": "i1",
                      "response_id": 5, "delta": "AAAA"}, id="audio-response-id-number"),
        pytest.param({"type": "response.done", "response": {"id": "r", "status": 7,
                      "usage": "lots"}}, id="response-done-types"),
        pytest.param({"type": "response.output_text.done", "item_id": "i1", "text": None},
                     id="text-none"),
    ],
)
async def test_o08_wrong_typed_fields_never_reach_subscribers_invalid(
        openai: OpenAIRealtimeEmulator, openai_provider: OpenAIRealtimeProvider,
        poller: Poller, frame: dict[str, Any]) -> None:
    run = await go(openai_provider, poller, inject_then_marker(frame))
    await check_openai(run, openai)  # every event validated against its model


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param('{"type": "brand.new", "x": ' + "[" * 100_000, id="deep-unbalanced"),
        pytest.param('{"type": "brand.new", "x": ' + "[" * 5000 + "]" * 5000 + "}",
                     id="deep-recursion"),
        pytest.param('{"type": "brand.new", "x": ' + "[" * 300 + "]" * 300 + "}",
                     id="deep-under-recursion-limit"),
        pytest.param("{not json", id="not-json"),
        pytest.param("[1, 2, 3]", id="not-an-object"),
        pytest.param({"type": ["unhashable"]}, id="unhashable-type"),
    ],
)
async def test_o09_hostile_frames_are_non_fatal_errors(
        openai: OpenAIRealtimeEmulator, openai_provider: OpenAIRealtimeProvider,
        poller: Poller, frame: Any) -> None:
    run = await go(openai_provider, poller, inject_then_marker(frame))
    await check_openai(run, openai)
    assert run.result.outcome == "completed"


# ---------------------------------------------------------------- the connection
async def test_o10_dropped_socket_mid_call(openai: OpenAIRealtimeEmulator,
                                           openai_provider: OpenAIRealtimeProvider,
                                           poller: Poller) -> None:
    async def act(session: Session, events: list[BaseEvent]) -> None:
        rt = await masquerade_openai.wait_realtime(session)
        await rt.send_text('call lookup_order {"order_id": "A1"}')
        await wait_for(lambda: responses(events, 2))
        openai.drop()
        await wait_for(lambda: len(openai._app.connections) >= 2 or session.done)
        session.end()

    run = await go(openai_provider, poller, act)
    await check_openai(run, openai)


@pytest.mark.parametrize("code", [1011, 1012, 1000])
async def test_o11_server_closes_the_socket(openai: OpenAIRealtimeEmulator,
                                            openai_provider: OpenAIRealtimeProvider,
                                            poller: Poller, code: int) -> None:
    async def act(session: Session, events: list[BaseEvent]) -> None:
        await masquerade_openai.wait_realtime(session)
        openai.close(code)
        await wait_for(lambda: len(openai._app.connections) >= 2 or session.done)
        session.end()

    run = await go(openai_provider, poller, act)
    await check_openai(run, openai)


async def test_o12_session_expires(openai: OpenAIRealtimeEmulator,
                                   poller: Poller) -> None:
    provider = openai.provider(open_timeout=15.0, handshake_timeout=15.0, close_timeout=1.0,
                               renewal={"renew_after": None, "max_reconnects": 0})

    async def act(session: Session, events: list[BaseEvent]) -> None:
        await masquerade_openai.wait_realtime(session)
        openai.expire()

    run = await go(provider, poller, act)
    await check_openai(run, openai)


async def test_o13_outer_cancel_while_a_tool_runs(openai: OpenAIRealtimeEmulator,
                                                  openai_provider: OpenAIRealtimeProvider,
                                                  poller: Poller) -> None:
    seen: list[Session] = []
    events_seen: list[BaseEvent] = []

    async def act(session: Session, events: list[BaseEvent]) -> None:
        seen.append(session)
        rt = await masquerade_openai.wait_realtime(session)
        await rt.send_text('call hanging_tool {"order_id": "A1"}')
        await wait_for(lambda: any(e.type == "tool.call" for e in events))
        events_seen.extend(events)
        raise_cancel.set()

    raise_cancel = anyio.Event()
    async with anyio.create_task_group() as tg:
        async def runner() -> None:
            await go(openai_provider, poller, act, request(tools=[hanging_tool]))

        tg.start_soon(runner)
        await raise_cancel.wait()
        tg.cancel_scope.cancel()
    [session] = seen
    assert session.result is not None and session.result.outcome == "cancelled"
    [record] = session.result.tool_calls
    assert record.error_type == "cancelled"
    # The emulator's thread marks the socket closed once it saw the close: wait (bounded).
    await openai.wait_for(lambda: openai.connection().closed)


async def test_o14_max_duration_ends_the_call(openai: OpenAIRealtimeEmulator,
                                              openai_provider: OpenAIRealtimeProvider,
                                              poller: Poller) -> None:
    run = await run_session(request(max_duration=0.4), openai_provider, poller=poller)
    await check_openai(run, openai)
    assert run.result.reason == "deadline"


async def test_o15_stalled_subscriber_pauses_the_reader(
        openai: OpenAIRealtimeEmulator, openai_provider: OpenAIRealtimeProvider,
        poller: Poller) -> None:
    limit = 40
    peak: list[int] = []

    async def act(session: Session, events: list[BaseEvent]) -> None:
        await masquerade_openai.wait_realtime(session)
        session.max_buffer = limit
        stalled = session.events(replay=False)
        stalled.__aiter__()
        for i in range(limit * 5):
            openai.inject({"type": "test.flood", "i": i})
        await anyio.sleep(0.3)
        assert stalled._sub is not None
        peak.append(len(stalled._sub.buffer))
        async for event in stalled:  # the reader catches up: the provider resumes
            if getattr(event, "name", None) == "test.flood" and event.payload["i"] == limit * 5 - 1:
                break
        await stalled.aclose()
        session.end()

    run = await go(openai_provider, poller, act)
    await check_openai(run, openai)
    assert peak and peak[0] <= limit + 1
    assert len([e for e in run.events if getattr(e, "name", None) == "test.flood"]) == limit * 5


async def test_o16_bad_key_fails_clearly(openai: OpenAIRealtimeEmulator,
                                         poller: Poller) -> None:
    provider = OpenAIRealtimeProvider(api_key="sk-wrong-" + "x" * 40,
                                      base_url=openai.base_url, open_timeout=5.0)
    run = await run_session(request(), provider, poller=poller)
    await check_openai(run, openai)
    assert run.result.outcome == "failed"
    assert "x" * 40 not in json.dumps(run.result.model_dump(mode="json"))
