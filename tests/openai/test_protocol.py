"""Protocol conformance against the emulator: handshake, turns, audio, usage, sequencing."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

import masquerade_openai
from masquerade import Host, ProviderError, SessionRequest
from masquerade_openai import OpenAIRealtimeProvider
from masquerade_openai.emulator import OpenAIRealtimeEmulator

from .helpers import collect, count, exchange, lookup_order, of

pytestmark = pytest.mark.anyio


async def test_handshake_configures_a_ga_session_before_ready(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    provider = provider_for(voice="marin", turn_detection="semantic_vad")
    request = SessionRequest(provider="openai", personality="Be brief.", tools=[lookup_order])
    async with host_for(provider) as host, host.session(request) as session:
        rt = await masquerade_openai.wait_realtime(session)
        assert rt.id.startswith("sess_")
        assert session.provider_session_id == rt.id
        # The configuring update was acknowledged before the session went ready.
        assert rt.session_config["instructions"] == "Be brief."
        await emulator.wait_for(lambda: len(emulator.connection().events_of("session.update")) == 2)
        session.end()
    record = emulator.connection()
    assert record.query == {"model": "gpt-realtime"}
    assert "authorization" not in record.headers  # recorded without the key
    first, tools_update = record.events_of("session.update")
    assert first["session"]["type"] == "realtime"
    assert first["session"]["audio"]["output"] == {
        "voice": "marin", "format": {"type": "audio/pcm", "rate": 24000}
    }
    assert first["session"]["audio"]["input"]["turn_detection"] == {"type": "semantic_vad"}
    assert first["session"]["audio"]["input"]["transcription"] == {
        "model": "gpt-4o-mini-transcribe"
    }
    # Tools go out in the OpenAI dialect, through the host's tool schema hook.
    [declared] = tools_update["session"]["tools"]
    assert declared["type"] == "function"
    assert declared["name"] == "lookup_order"
    assert "order_id" in declared["parameters"]["properties"]
    assert session.result is not None
    assert session.result.outcome == "completed"


async def test_text_turn_streams_audio_transcript_and_usage(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    events, s, rt = await exchange(host_for, provider, "hello there friend", count("response.done"))
    audio = of(events, "audio.delta")
    assert audio, "an audio response streams audio deltas"
    # 100 ms of 24 kHz PCM16 per delta, decoded only on access.
    assert all(len(a.audio) == 4800 for a in audio)
    deltas = [e.text for e in of(events, "transcript.delta") if e.role == "assistant"]
    [done] = [e for e in of(events, "transcript.done") if e.role == "assistant"]
    assert "".join(deltas) == done.text == "You said: hello there friend"
    [user] = [e for e in of(events, "transcript.done") if e.role == "user"]
    assert user.text == "hello there friend"
    [started] = of(events, "response.started")
    [finished] = of(events, "response.done")
    assert started.response_id == finished.response_id
    assert finished.status == "completed"
    assert finished.usage["total_tokens"] > 0
    assert s.result is not None
    assert s.result.usage["total_tokens"] == finished.usage["total_tokens"]
    assert [t.role for t in s.result.transcript] == ["user", "assistant"]
    # By default the store counts the audio but does not keep it (store_audio=False).
    [spoken] = [i for i in rt.items() if i.role == "assistant"]
    assert spoken.audio == b""
    assert spoken.audio_ms() == 100 * len(audio)
    # Raw GA events that have no normalized form still reach observers.
    names = {e.name for e in of(events, "provider")}
    assert {
        "session.created",
        "session.updated",
        "response.output_item.added",
        "rate_limits.updated",
    } <= names


async def test_text_modality_maps_output_text(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    provider = provider_for(output_modalities=["text"])
    events, _, rt = await exchange(host_for, provider, "just text", count("response.done"))
    assert not of(events, "audio.delta")
    [done] = [e for e in of(events, "transcript.done") if e.role == "assistant"]
    assert done.text == "You said: just text"
    item = next(i for i in rt.items() if i.role == "assistant")
    assert item.text == "You said: just text"
    assert item.status == "completed"


async def test_conversation_store_follows_the_server(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    provider = provider_for(store_audio=True)
    request = SessionRequest(provider="openai", tools=[lookup_order])
    async with host_for(provider) as host, host.session(request) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_text('call lookup_order {"order_id": "A1"}')
        added = [await rt.next_item() for _ in range(4)]
        completed = [await rt.next_completed_item() for _ in range(4)]
        s.end()
    assert [(i.type, i.role) for i in added] == [
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "assistant"),
    ]
    call = added[1]
    assert call.name == "lookup_order"
    assert json.loads(call.arguments) == {"order_id": "A1"}
    assert json.loads(call.output or "") == {"order_id": "A1", "status": "shipped"}
    assert {i.id for i in completed} == {i.id for i in added}
    answer = added[3]
    assert answer.transcript.startswith("lookup_order returned")
    assert answer.audio_ms() > 0
    assert len(answer.audio) == answer.audio_ms() * 48
    # The store ends with the session: waiting for more fails instead of hanging.
    with pytest.raises(EOFError):
        await rt.next_item()


async def test_create_response_is_sequenced(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    emulator.script = {"pace": 0.002}
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_text("one", respond=False)
        await rt.create_response()
        await rt.create_response()  # queued: sent only after the first response.done
        assert rt.response_active
        events = await collect(s, count("response.done", 2))
        s.end()
    assert [e.status for e in of(events, "response.done")] == ["completed", "completed"]
    assert not [e for e in of(events, "error")]
    sent = [e["type"] for e in emulator.connection().client_events]
    assert sent.count("response.create") == 2


async def test_active_response_collision_is_recovered(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    emulator.script = {"pace": 0.005}  # the server's response lasts ~100 ms
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        # Stage the race: the server starts a response (VAD) the client has not seen yet,
        # then the client's own response.create arrives and is refused.
        emulator.hold()
        emulator.speak("are you there")
        await rt.create_response()
        await emulator.wait_for(
            lambda: "response.create" in [e["type"] for e in emulator.connection().client_events]
        )
        emulator.release()
        events = await collect(s, count("response.done", 2))
        s.end()
    [error] = of(events, "error")
    assert error.code == "conversation_already_has_active_response"
    assert not error.fatal
    assert [e.status for e in of(events, "response.done")] == ["completed", "completed"]
    # The refused request was sent again after the server's response finished.
    assert [e["type"] for e in emulator.connection().client_events].count("response.create") == 2


async def test_audio_input_commit_and_clear(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    emulator.script = {"transcripts": ["what time is it"]}
    provider = provider_for(turn_detection=None)  # manual turns
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_audio(b"\x01\x02" * 2400)  # 100 ms
        await rt.commit()
        await rt.create_response()
        events = await collect(s, count("response.done"))
        await rt.send_audio(b"\x05\x00" * 100)
        await rt.clear_audio()
        await rt.commit()  # empty after the clear: the server refuses
        events = await collect(s, count("error"))
        s.end()
    [heard] = [e for e in of(events, "transcript.done") if e.role == "user"]
    assert heard.text == "what time is it"
    [answer] = [e for e in of(events, "transcript.done") if e.role == "assistant"]
    assert answer.text == "You said: what time is it"
    [error] = of(events, "error")
    assert error.code == "input_audio_buffer_commit_empty"
    assert not error.fatal
    appends = emulator.connection().events_of("input_audio_buffer.append")
    assert appends[0]["audio"] == f"<{len(base64.b64encode(bytes(4800)))} base64 chars>"


async def test_large_audio_is_split_under_the_event_limit(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from masquerade_openai import _input

    monkeypatch.setattr(_input, "MAX_APPEND_BYTES", 3000)  # small, to keep the test fast
    provider = provider_for(turn_detection=None)
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_audio(b"\x01" * 7000)
        await emulator.wait_for(
            lambda: len(emulator.connection().events_of("input_audio_buffer.append")) == 3
        )
        s.end()
    sizes = [e["audio"] for e in emulator.connection().events_of("input_audio_buffer.append")]
    assert sizes == ["<4000 base64 chars>", "<4000 base64 chars>", "<1336 base64 chars>"]


def test_default_append_chunk_fits_the_15_mib_limit() -> None:
    from masquerade_openai import _session

    envelope = len('{"type":"input_audio_buffer.append","audio":""}')
    assert (_session.MAX_APPEND_BYTES + 2) // 3 * 4 + envelope < 15 * 2**20


async def test_update_is_sent_and_kept_for_renewal(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.update(instructions="Speak like a pirate.")
        await emulator.wait_for(
            lambda: emulator.connection().session.get("instructions") == "Speak like a pirate."
        )
        s.end()
    assert rt.session_payload["instructions"] == "Speak like a pirate."


async def test_rejected_configuration_fails_creation_clearly(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    provider = provider_for(session={"temperature": 0.7})  # a beta-only field
    async with host_for(provider) as host:
        result = await host.run_session(SessionRequest(provider="openai"))
    assert result.outcome == "failed"
    assert result.failure_code == "unknown_parameter"
    assert "session.temperature" in (result.failure or "")


async def test_create_raises_provider_error_directly(
    emulator: OpenAIRealtimeEmulator, provider_for: Callable[..., OpenAIRealtimeProvider]
) -> None:
    provider = provider_for(session={"temperature": 0.7})
    with pytest.raises(ProviderError) as info:
        await provider.create(SessionRequest(provider="openai"))
    assert info.value.code == "unknown_parameter"
    assert "RealtimeOptions" in info.value.hint
