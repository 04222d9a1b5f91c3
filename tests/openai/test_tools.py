"""The tool round trip: function call -> invocation chain -> function_call_output ->
sequenced response.create; unknown tools, bad arguments, parallel and slow calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import masquerade_openai
from masquerade import Host, Session, SessionRequest
from masquerade.events import MAX_JSON_DEPTH
from masquerade_openai import OpenAIRealtimeProvider
from masquerade_openai.emulator import EmulatorScript, OpenAIRealtimeEmulator

from .helpers import collect, count, exchange, last_answer, lookup_order, of, slow_lookup

pytestmark = pytest.mark.anyio


def outputs_sent(emulator: OpenAIRealtimeEmulator) -> list[dict[str, object]]:
    return [
        e["item"] for e in emulator.connection().events_of("conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    ]


async def test_tool_round_trip(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    request = SessionRequest(provider="openai", tools=[lookup_order])
    events, s, _ = await exchange(
        host_for,
        provider,
        'call lookup_order {"order_id": "A1001"}',
        count("response.done", 2),
        request=request,
    )
    [call] = of(events, "tool.call")
    [result] = of(events, "tool.result")
    assert call.name == "lookup_order"
    assert call.arguments == {"order_id": "A1001"}
    assert result.call_id == call.call_id
    assert result.ok
    [sent] = outputs_sent(emulator)
    assert sent["call_id"] == call.call_id
    assert json.loads(str(sent["output"])) == {"order_id": "A1001", "status": "shipped"}
    answer = last_answer(events)
    assert answer.text == 'lookup_order returned {"order_id": "A1001", "status": "shipped"}'
    # The follow-up response.create went out only after the calling response finished:
    # the server never refused it.
    assert not of(events, "error")
    server = emulator.connection().server_events
    client = [e["type"] for e in emulator.connection().client_events]
    assert client.count("response.create") == 2
    assert "error" not in server
    assert s.result is not None
    assert [r.name for r in s.result.tool_calls] == ["lookup_order"]


async def test_unknown_tool_gets_an_answer(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    emulator.script = EmulatorScript(call_undeclared_tools=True)  # a model inventing a tool
    request = SessionRequest(provider="openai", tools=[lookup_order])
    events = (
        await exchange(
            host_for,
            provider,
            'call launch_rocket {"target": "moon"}',
            count("response.done", 2),
            request=request,
        )
    ).events
    [result] = of(events, "tool.result")
    assert result.error_type == "not_found"
    [sent] = outputs_sent(emulator)
    output = json.loads(str(sent["output"]))
    assert "launch_rocket" in output["error"]
    assert "lookup_order" in output["error"]
    # The model was not left waiting: it answered about the failure.
    answer = last_answer(events)
    assert "launch_rocket returned" in answer.text


async def test_arguments_that_are_not_json_are_answered_with_an_error(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    request = SessionRequest(provider="openai", tools=[lookup_order])
    events = (
        await exchange(
            host_for,
            provider,
            "call lookup_order {order_id: A1",
            count("response.done", 2),
            request=request,
        )
    ).events
    [call] = of(events, "tool.call")
    assert call.arguments == "{order_id: A1"  # passed on raw
    [result] = of(events, "tool.result")
    assert result.error_type == "arguments"
    [sent] = outputs_sent(emulator)
    assert "error" in json.loads(str(sent["output"]))


async def test_parallel_calls_are_all_answered_before_one_follow_up(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    emulator.script = {
        "rules": [
            {
                "match": "both",
                "tools": [
                    {"name": "lookup_order", "arguments": {"order_id": "A1"}},
                    {"name": "slow_lookup", "arguments": {"order_id": "B2"}},
                ],
            }
        ]
    }
    request = SessionRequest(provider="openai", tools=[lookup_order, slow_lookup])
    events = (
        await exchange(
            host_for, provider, "check both orders", count("response.done", 2), request=request
        )
    ).events
    assert sorted(r.name for r in of(events, "tool.result")) == ["lookup_order", "slow_lookup"]
    client = emulator.connection().client_events
    kinds = [e["type"] for e in client]
    # Two outputs, then a single response.create after both.
    last_output = max(
        i
        for i, e in enumerate(client)
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"
    )
    creates = [i for i, k in enumerate(kinds) if k == "response.create"]
    assert len(creates) == 2
    assert creates[1] > last_output
    answer = last_answer(events)
    assert "lookup_order returned" in answer.text
    assert "slow_lookup returned" in answer.text


async def test_audio_keeps_flowing_while_a_tool_runs(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    emulator.script = {"pace": 0.005}
    request = SessionRequest(provider="openai", tools=[slow_lookup])
    async with host_for(provider) as host, host.session(request) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_text('call slow_lookup {"order_id": "C3"}')
        await collect(s, count("tool.call"))
        # While the 300 ms tool runs, the caller speaks and the model answers: the receive
        # loop must keep delivering that audio instead of waiting for the tool.
        emulator.speak("hello while you look")
        events = await collect(s, count("response.done", 3), timeout=10)
        s.end()
    kinds = [e.type for e in events]
    call_at = kinds.index("tool.call")
    result_at = kinds.index("tool.result")
    assert "audio.delta" in kinds[call_at:result_at]
    assert of(events, "tool.result")[0].output == "order C3 is late"
    # The tool's follow-up waited for the caller's response to finish (no collision).
    assert not of(events, "error")


async def test_every_call_is_answered_once_even_when_repeated(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    request = SessionRequest(provider="openai", tools=[lookup_order])
    async with host_for(provider) as host, host.session(request) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_text('call lookup_order {"order_id": "A1"}')
        events = await collect(s, count("response.done", 2))
        # The same completed call announced again (as a replayed stream would): ignored.
        item = next(i for i in rt.items() if i.type == "function_call")
        emulator.inject(
            {
                "type": "response.output_item.done",
                "response_id": "resp_x",
                "output_index": 0,
                "item": {
                    "id": item.id,
                    "type": "function_call",
                    "status": "completed",
                    "call_id": item.call_id,
                    "name": "lookup_order",
                    "arguments": item.arguments,
                },
            }
        )
        emulator.inject({"type": "test.marker"})  # unknown type: a provider event
        events = await collect(s, count("provider", name="test.marker"))
        s.end()
    assert len(of(events, "tool.call")) == 1
    assert len(outputs_sent(emulator)) == 1


async def test_calls_of_later_turns_reuse_the_idle_runner_task(
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spawned: list[str | None] = []
    spawn = Session.spawn

    def counting(self: Session, fn: Any, *args: Any, name: str | None = None) -> None:
        spawned.append(name)
        spawn(self, fn, *args, name=name)

    monkeypatch.setattr(Session, "spawn", counting)
    request = SessionRequest(provider="openai", tools=[lookup_order])
    async with host_for(provider) as host, host.session(request) as s:
        rt = await masquerade_openai.wait_realtime(s)
        for turn in range(1, 5):
            await rt.send_text(f'call lookup_order {{"order_id": "A{turn}"}}')
            events = await collect(s, count("response.done", 2 * turn))
        s.end()
    results = of(events, "tool.result")
    assert [r.output["order_id"] for r in results] == ["A1", "A2", "A3", "A4"]  # type: ignore[index]
    assert len({r.call_id for r in results}) == 4
    # One runner for the session (a second only if a call came before the first runner
    # went idle), not one task per call.
    assert spawned.count("openai tool runner") <= 2


async def test_arguments_that_nest_too_deep_are_answered_with_an_error(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    deep: dict[str, Any] = {}
    for _ in range(MAX_JSON_DEPTH + 5):
        deep = {"a": deep}
    request = SessionRequest(provider="openai", tools=[lookup_order])
    async with host_for(provider) as host, host.session(request) as s:
        await masquerade_openai.wait_realtime(s)
        # A call whose arguments arrive as an object (not JSON text) nesting too deep.
        emulator.inject({
            "type": "response.output_item.done", "response_id": "resp_deep",
            "output_index": 0,
            "item": {"id": "item_deep", "type": "function_call", "status": "completed",
                     "call_id": "call_deep", "name": "lookup_order", "arguments": deep},
        })
        events = await collect(s, count("tool.result"))
        # The answer goes out after its event: wait (bounded) until the server has it.
        await emulator.wait_for(lambda: len(outputs_sent(emulator)) == 1)
        s.end()
    [result] = of(events, "tool.result")
    assert result.error_type == "arguments"
    assert "nest deeper than" in result.error
    [sent] = outputs_sent(emulator)
    assert sent["call_id"] == "call_deep"
