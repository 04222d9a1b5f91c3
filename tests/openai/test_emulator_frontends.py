"""The emulator as browsers and the official SDK see it: client secrets, WebRTC call
creation, websocket auth by subprotocol, and response fidelity.

The official SDK and ``websockets.asyncio`` are asyncio-only, so these run on asyncio.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from masquerade import redact
from masquerade_openai.emulator import OpenAIRealtimeEmulator

from .test_browser import OFFER

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(emulator: OpenAIRealtimeEmulator) -> AsyncIterator[Any]:
    async with openai.AsyncOpenAI(api_key=emulator.api_key, base_url=emulator.base_url) as c:
        yield c


async def mint(emulator: OpenAIRealtimeEmulator, session: dict[str, Any]) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{emulator.base_url}/realtime/client_secrets",
                                   json={"session": session},
                                   headers={"Authorization": f"Bearer {emulator.api_key}"})
    assert response.status_code == 200, response.text
    return str(response.json()["value"])


async def until(ws: ClientConnection, kind: str, limit: int = 500) -> list[dict[str, Any]]:
    events = []
    for _ in range(limit):
        event = json.loads(await ws.recv())
        events.append(event)
        if event["type"] == kind:
            return events
    raise AssertionError(f"no {kind} in {[e['type'] for e in events]}")


async def say(ws: ClientConnection, text: str, **response: Any) -> list[dict[str, Any]]:
    await ws.send(json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}))
    await ws.send(json.dumps({"type": "response.create", "response": response}))
    return await until(ws, "response.done")


def by_subprotocol(key: str) -> list[Any]:
    return ["realtime", f"openai-insecure-api-key.{key}"]


async def test_sdk_mints_a_client_secret_and_uses_it(
    emulator: OpenAIRealtimeEmulator, client: Any
) -> None:
    secret = await client.realtime.client_secrets.create(
        expires_after={"anchor": "created_at", "seconds": 120},
        session={"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief.",
                 "audio": {"output": {"voice": "marin"}}},
    )
    assert secret.value.startswith("ek_")
    assert secret.session.type == "realtime" and secret.session.instructions == "Be brief."
    assert secret.value not in redact(f"the key is {secret.value}")
    async with openai.AsyncOpenAI(api_key=secret.value, base_url=emulator.base_url) as frontend:
        async with frontend.realtime.connect(model="gpt-realtime") as conn:
            created = await conn.recv()
            assert created.type == "session.created"
            assert created.session.instructions == "Be brief."
            assert created.session.audio.output.voice == "marin"
            await conn.conversation.item.create(item={
                "type": "message", "role": "user",
                "content": [{"type": "input_text", "text": "hello"}]})
            await conn.response.create()
            while (event := await conn.recv()).type != "response.done":
                pass
            assert event.response.status == "completed"
        # An ephemeral key opens sessions and creates calls, and nothing else.
        with pytest.raises(openai.AuthenticationError):
            await frontend.realtime.client_secrets.create(session={"type": "realtime"})


async def test_sdk_creates_a_call_and_the_sideband_attaches(
    emulator: OpenAIRealtimeEmulator, client: Any
) -> None:
    answer = await client.realtime.calls.create(sdp=OFFER, session={
        "type": "realtime", "model": "gpt-realtime", "instructions": "Sideband test."})
    assert answer.text.startswith("v=0")
    [call] = emulator.calls.values()
    assert call.kind == "webrtc" and call.answer == answer.text
    async with client.realtime.connect(call_id=call.call_id) as conn:
        created = await conn.recv()
        assert created.session.instructions == "Sideband test."
        await client.realtime.calls.hangup(call.call_id)
    assert call.state == "ended"


async def test_websocket_auth_by_subprotocol_with_an_ephemeral_key(
    emulator: OpenAIRealtimeEmulator,
) -> None:
    key = await mint(emulator, {"type": "realtime", "instructions": "From the key."})
    url = f"{emulator.websocket_url}?model=gpt-realtime"
    async with connect(url, subprotocols=by_subprotocol(key)) as ws:
        assert ws.subprotocol == "realtime"
        [created] = await until(ws, "session.created")
        assert created["session"]["instructions"] == "From the key."
        done = (await say(ws, "hello"))[-1]
        assert done["response"]["status"] == "completed"
    record = emulator.connection()
    assert key not in json.dumps(record.headers)  # the key is never recorded
    # The API key works the same way; a wrong key is refused before the upgrade.
    async with connect(url, subprotocols=by_subprotocol(emulator.api_key)) as ws:
        await until(ws, "session.created")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, subprotocols=by_subprotocol("ek_wrong")):
            pass
    assert refused.value.response.status_code == 401


async def test_no_tool_calls_without_declared_tools_or_with_tool_choice_none(
    emulator: OpenAIRealtimeEmulator,
) -> None:
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    async with connect(f"{emulator.websocket_url}?model=gpt-realtime",
                       additional_headers=headers) as ws:
        await until(ws, "session.created")
        events = await say(ws, 'call lookup_order {"order_id": "A1"}')
        assert "response.function_call_arguments.done" not in [e["type"] for e in events]
        assert "lookup_order" in events[-1]["response"]["output"][0]["content"][0]["transcript"]
        tool = {"type": "function", "name": "lookup_order", "parameters": {"type": "object"}}
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "tools": [tool], "tool_choice": "none"}}))
        await until(ws, "session.updated")
        events = await say(ws, 'call lookup_order {"order_id": "A2"}')
        assert not [e for e in events if e["type"].startswith("response.function_call")]
        events = await say(ws, 'call lookup_order {"order_id": "A3"}', tool_choice="auto")
        [done] = [e for e in events if e["type"] == "response.function_call_arguments.done"]
        assert json.loads(done["arguments"]) == {"order_id": "A3"}


async def test_out_of_band_response_with_input_and_instructions(
    emulator: OpenAIRealtimeEmulator,
) -> None:
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    async with connect(f"{emulator.websocket_url}?model=gpt-realtime",
                       additional_headers=headers) as ws:
        await until(ws, "session.created")
        await say(ws, "my name is Ada")
        items_before = len(emulator.connection().items)
        await ws.send(json.dumps({"type": "response.create", "response": {
            "conversation": "none", "input": [], "output_modalities": ["text"],
            "instructions": "summarize the call"}}))
        events = await until(ws, "response.done")
        kinds = [e["type"] for e in events]
        assert "conversation.item.added" not in kinds and "conversation.item.done" not in kinds
        response = events[-1]["response"]
        assert response["conversation_id"] is None
        [text] = [e for e in events if e["type"] == "response.output_text.done"]
        assert "summarize the call" in text["text"] and "Ada" not in text["text"]
        assert len(emulator.connection().items) == items_before
        assert response["audio"]["output"].keys() == {"format", "voice"}  # no speed


async def test_calls_endpoint_refuses_what_is_not_an_offer(
    emulator: OpenAIRealtimeEmulator,
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{emulator.base_url}/realtime/calls", content="not sdp",
            headers={"Authorization": f"Bearer {emulator.api_key}",
                     "Content-Type": "application/sdp"})
        assert response.status_code == 400
        response = await http.post(f"{emulator.base_url}/realtime/calls", content=OFFER,
                                   headers={"Authorization": "Bearer ek_nope",
                                            "Content-Type": "application/sdp"})
        assert response.status_code == 401
    assert not emulator.calls
