"""Browser frontends: WebRTC calls through the backend, the sideband, ephemeral keys.

A ``transport="webrtc"`` session waits for the browser's SDP offer, creates the call with
the backend's configuration (tools included), attaches the sideband websocket by call id,
and from then on behaves like any websocket session: tools answered once, barge-in,
usage, and the cancel path hangs the call up.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

import masquerade_openai
from masquerade import ConfigurationError, Host, SessionRequest, redact
from masquerade_openai import OpenAIRealtimeProvider
from masquerade_openai.emulator import SAMPLE_OFFER, OpenAIRealtimeEmulator

from .helpers import collect, count, lookup_order, of

pytestmark = pytest.mark.anyio

OFFER = SAMPLE_OFFER

WEBRTC = {"transport": "webrtc"}


def outputs_sent(emulator: OpenAIRealtimeEmulator) -> list[dict[str, object]]:
    return [
        e["item"] for c in emulator.connections for e in c.events_of("conversation.item.create")
        if e["item"].get("type") == "function_call_output"
    ]


async def test_offer_through_the_backend_creates_a_call_and_a_sideband(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    request = SessionRequest(provider="openai", tools=[lookup_order],
                             personality="You are the order desk.", options=WEBRTC)
    async with host_for(provider) as host, host.session(request) as s:
        rt = await masquerade_openai.wait_realtime(s)
        assert s.state == "provisioning"  # waiting for the browser
        answer = await rt.answer_offer(OFFER)
        assert answer.startswith("v=0")
        assert "a=mid:0" in answer and "a=mid:1" in answer and "opus/48000/2" in answer
        [call] = emulator.calls.values()
        assert call.kind == "webrtc" and rt.call_id == call.call_id
        assert call.call_id.startswith("rtc_")
        # The backend declared the tools and the instructions, the browser nothing.
        config = call.accept_config or {}
        assert [t["name"] for t in config["tools"]] == ["lookup_order"]
        assert config["instructions"] == "You are the order desk."
        assert "format" not in config["audio"]["input"]  # the codec is the call's
        events = await collect(s, count("ready"))
        [ready] = of(events, "ready")
        assert ready.credentials.kind == "webrtc"
        assert ready.credentials.public["callId"] == call.call_id
        assert emulator.connection().query == {"call_id": call.call_id}
        s.end()


async def test_sideband_answers_a_tool_call_once_and_hangs_up_on_cancel(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    request = SessionRequest(provider="openai", tools=[lookup_order], options=WEBRTC)
    async with host_for(provider) as host, host.session(request) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.answer_offer(OFFER)
        await collect(s, count("ready"))
        # The user speaks in the browser; the backend sees it on the sideband.
        emulator.speak('call lookup_order {"order_id": "A1001"}')
        events = await collect(s, count("response.done", 2))
        s.end()
    [result] = of(events, "tool.result")
    assert result.error_type is None
    [sent] = outputs_sent(emulator)
    assert json.loads(str(sent["output"]))["status"] == "shipped"
    assert [e.text for e in of(events, "transcript.done") if e.role == "user"] == [
        'call lookup_order {"order_id": "A1001"}'
    ]
    assert s.result is not None
    assert s.result.usage.get("total_tokens", 0) > 0
    # No audio deltas on a WebRTC sideband: the audio is the browser's media.
    assert not of(events, "audio.delta")
    [call] = emulator.calls.values()
    assert call.state == "ended" and call.hung_up_by == "server"
    assert ("POST", f"/v1/realtime/calls/{call.call_id}/hangup") in emulator.http_requests


async def test_barge_in_on_the_sideband(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    # ~12 s of paced reply: the barge-in always lands mid-response (interrupted: no cost)
    emulator.script = {"pace": 0.02,
                       "rules": [{"match": "story", "say": " ".join(["word"] * 200)}]}
    async with host_for(provider_for()) as host, host.session(
        SessionRequest(provider="openai", options=WEBRTC)
    ) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.answer_offer(OFFER)
        await collect(s, count("ready"))
        await rt.send_text("tell me a long story")
        await collect(s, count("transcript.delta", 2, role="assistant"))
        emulator.speak("stop")
        events = await collect(s, count("response.done", 2))
        s.end()
    done = of(events, "response.done")
    assert done[0].status == "cancelled" and done[0].reason == "turn_detected"
    assert of(events, "speech.started")


async def test_ephemeral_key_flow_frontend_creates_the_call(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    request = SessionRequest(provider="openai", tools=[lookup_order], options=WEBRTC)
    async with host_for(provider) as host, host.session(request) as s:
        rt = await masquerade_openai.wait_realtime(s)
        secret = await rt.client_secret(expires_after_s=60)
        value = secret.value.get_secret_value()
        assert value.startswith("ek_")
        assert value not in repr(secret) and value not in redact(f"key={value}")
        assert [t["name"] for t in secret.session["tools"]] == ["lookup_order"]
        # The frontend creates the call with the ephemeral key (a bare SDP offer) ...
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{emulator.base_url}/realtime/calls", content=OFFER,
                headers={"Authorization": f"Bearer {value}",
                         "Content-Type": "application/sdp"},
            )
        assert response.status_code == 201
        assert response.headers["content-type"] == "application/sdp"
        call_id = response.headers["location"].rsplit("/", 1)[-1]
        # ... and reports the call id; the backend attaches the sideband.
        await rt.attach(call_id)
        await collect(s, count("ready"))
        call = emulator.calls[call_id]
        assert [t["name"] for t in (call.accept_config or {})["tools"]] == ["lookup_order"]
        emulator.speak('call lookup_order {"order_id": "B2"}')
        events = await collect(s, count("tool.result"))
        s.end()
    assert len(of(events, "tool.result")) == 1
    assert emulator.calls[call_id].state == "ended"


async def test_a_session_serves_one_call(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    async with host_for(provider) as host, host.session(
        SessionRequest(provider="openai", options=WEBRTC)
    ) as s:
        rt = await masquerade_openai.wait_realtime(s)
        with pytest.raises(ConfigurationError, match="not valid SDP"):
            await rt.answer_offer("hello")
        assert not emulator.calls  # nothing was created for a bad offer
        await rt.answer_offer(OFFER)
        with pytest.raises(ConfigurationError, match="already has its call"):
            await rt.answer_offer(OFFER)
        s.end()


async def test_websocket_sessions_have_no_browser_methods(
    provider: OpenAIRealtimeProvider, host_for: Callable[..., Host]
) -> None:
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        with pytest.raises(ConfigurationError, match="webrtc"):
            await rt.answer_offer(OFFER)
        s.end()


async def test_browser_that_never_offers_times_out(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    request = SessionRequest(provider="openai", options=WEBRTC, provisioning_timeout=0.5)
    async with host_for(provider) as host:
        result = await host.run_session(request)
    assert result.outcome != "completed"
    assert not emulator.calls and not emulator.connections
