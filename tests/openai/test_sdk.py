"""The official ``openai`` SDK against the emulator: proof that it speaks the real protocol.

The SDK's realtime client is built on ``websockets.asyncio`` and has no trio
implementation, so these tests run on asyncio only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from masquerade_openai import sign_webhook
from masquerade_openai.emulator import OpenAIRealtimeEmulator

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the SDK's realtime connection is asyncio-only


@pytest.fixture
async def client(emulator: OpenAIRealtimeEmulator) -> AsyncIterator[Any]:
    # Closed here: a leaked SDK client closes itself on garbage collection by scheduling
    # a task on whatever loop runs then, which breaks a later test.
    async with openai.AsyncOpenAI(api_key=emulator.api_key, base_url=emulator.base_url) as c:
        yield c


async def read_until(conn: Any, kind: str, limit: int = 500) -> list[Any]:
    events = []
    for _ in range(limit):
        event = await conn.recv()
        events.append(event)
        if event.type == kind:
            return events
    raise AssertionError(f"no {kind} in {[e.type for e in events]}")


async def test_sdk_text_and_audio_turns(emulator: OpenAIRealtimeEmulator, client: Any) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        assert created.session.type == "realtime"
        await conn.session.update(session={"type": "realtime", "instructions": "Be brief.",
                                           "output_modalities": ["audio"]})
        updated = await read_until(conn, "session.updated")
        assert updated[-1].session.instructions == "Be brief."
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "good morning"}],
        })
        await conn.response.create()
        events = await read_until(conn, "response.done")
    kinds = [e.type for e in events]
    assert "response.output_audio.delta" in kinds
    done = events[-1]
    assert done.response.status == "completed"
    assert done.response.usage.total_tokens > 0
    transcript = next(e for e in events if e.type == "response.output_audio_transcript.done")
    assert transcript.transcript == "You said: good morning"
    audio = [e for e in events if e.type == "response.output_audio.delta"]
    import base64

    assert {len(base64.b64decode(e.delta)) for e in audio} == {4800}


async def test_sdk_function_call_round_trip_and_active_response_error(
    emulator: OpenAIRealtimeEmulator, client: Any
) -> None:
    emulator.script = {"pace": 0.01}  # the first response is still active at the second
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "tools": [{
            "type": "function", "name": "lookup_order", "description": "Look up an order.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        }]})
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": 'call lookup_order {"order_id": "Q1"}'}],
        })
        await conn.response.create()
        await conn.response.create(event_id="evt_second")  # while the first is active
        events = await read_until(conn, "response.done")
        [error] = [e for e in events if e.type == "error"]
        assert error.error.code == "conversation_already_has_active_response"
        assert error.error.event_id == "evt_second"
        [call] = [e for e in events if e.type == "response.function_call_arguments.done"]
        assert call.name == "lookup_order"
        assert json.loads(call.arguments) == {"order_id": "Q1"}
        await conn.conversation.item.create(item={
            "type": "function_call_output", "call_id": call.call_id, "output": '{"ok": true}',
        })
        await conn.response.create()
        events = await read_until(conn, "response.done")
        said = next(e for e in events if e.type == "response.output_audio_transcript.done")
        assert said.transcript == 'lookup_order returned {"ok": true}'
        # An output for a call that does not exist is refused like the service does.
        await conn.conversation.item.create(item={
            "type": "function_call_output", "call_id": "call_nope", "output": "x",
        })
        error_event = await read_until(conn, "error")
        assert error_event[-1].error.code == "invalid_tool_call_id"


async def test_sdk_truncate_and_cancel(emulator: OpenAIRealtimeEmulator, client: Any) -> None:
    emulator.script = {"pace": 0.01}
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            # ~4 s of paced answer: the cancel always lands mid-response, even under load
            "content": [{"type": "input_text", "text": "please talk for a while " * 16}],
        })
        await conn.response.create()
        events = await read_until(conn, "response.output_audio.delta")
        item_id = events[-1].item_id
        await conn.response.cancel()
        events = await read_until(conn, "response.done")
        assert events[-1].response.status == "cancelled"
        assert events[-1].response.status_details.reason == "client_cancelled"
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=50)
        truncated = await read_until(conn, "conversation.item.truncated")
        assert truncated[-1].audio_end_ms == 50
        await conn.conversation.item.truncate(item_id=item_id, content_index=0,
                                              audio_end_ms=10**6)
        error = await read_until(conn, "error")
        assert error[-1].error.code == "invalid_value"


async def test_sdk_bad_key_is_refused(emulator: OpenAIRealtimeEmulator) -> None:
    from websockets.exceptions import InvalidStatus

    async with openai.AsyncOpenAI(api_key="sk-wrong-0123456789",
                                  base_url=emulator.base_url) as client:
        with pytest.raises(InvalidStatus, match="401"):
            async with client.realtime.connect(model="gpt-realtime"):
                pass


async def test_sdk_call_control_and_webhooks(emulator: OpenAIRealtimeEmulator, client: Any) -> None:
    call_id = emulator.new_call()
    await client.realtime.calls.accept(call_id, type="realtime", model="gpt-realtime",
                                       instructions="Answer the phone.")
    assert emulator.calls[call_id].state == "accepted"
    async with client.realtime.connect(call_id=call_id) as conn:
        created = await conn.recv()
        assert created.session.instructions == "Answer the phone."
    await client.realtime.calls.hangup(call_id)
    assert emulator.calls[call_id].state == "ended"
    other = emulator.new_call()
    await client.realtime.calls.reject(other, status_code=486)
    assert emulator.calls[other].reject_status == 486
    with pytest.raises(openai.NotFoundError):
        await client.realtime.calls.accept("rtc_missing", type="realtime")
    # The SDK's verifier accepts the emulator's (and masquerade's) signatures.
    body, headers = emulator.webhook_request(other)
    event = client.webhooks.unwrap(body, headers, secret=emulator.webhook_secret)
    assert event.type == "realtime.call.incoming"
    assert event.data.call_id == other
    mine = json.dumps({"id": "evt_x", "type": "realtime.call.incoming", "created_at": 1,
                       "object": "event", "data": {"call_id": "rtc_1", "sip_headers": []}})
    signed = sign_webhook(mine, emulator.webhook_secret)
    assert client.webhooks.unwrap(mine, signed, secret=emulator.webhook_secret).data.call_id == (
        "rtc_1"
    )
