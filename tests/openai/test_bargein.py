"""Barge-in: the user talks over the model; the response stops and unheard audio is cut."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import masquerade_openai
from masquerade import Host, SessionRequest
from masquerade_openai import OpenAIRealtimeProvider
from masquerade_openai.emulator import OpenAIRealtimeEmulator

from .helpers import collect, count, of

pytestmark = pytest.mark.anyio

SPEECH = b"\x10\x20" * 2400  # 100 ms of non-silent PCM16
# ~6 s of paced audio: long enough that the interruption always lands mid-response, even on
# a loaded machine (an interrupted reply costs nothing).
LONG_REPLY = {"rules": [{"match": "story", "say": " ".join(["word"] * 200)}], "pace": 0.01}


async def start_long_reply(
    emulator: OpenAIRealtimeEmulator, rt: masquerade_openai.OpenAIRealtimeSession,
    session: object,
) -> None:
    await rt.send_text("tell me a story")
    await collect(session, count("audio.delta", 5))  # type: ignore[arg-type]


async def test_server_interrupt_truncates_at_the_playback_position(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    emulator.script = LONG_REPLY
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await start_long_reply(emulator, rt, s)
        await rt.send_audio(SPEECH)  # server VAD: speech_started, then it cancels itself
        events = await collect(s, count("response.done"))
        await emulator.wait_for(
            lambda: bool(emulator.connection().events_of("conversation.item.truncate"))
        )
        s.end()
    assert of(events, "speech.started")
    [done] = of(events, "response.done")
    assert done.status == "cancelled"
    assert done.reason == "turn_detected"
    # The server interrupts by itself (interrupt_response): no response.cancel was needed.
    assert not emulator.connection().events_of("response.cancel")
    [truncate] = emulator.connection().events_of("conversation.item.truncate")
    item = next(i for i in rt.items() if i.role == "assistant")
    assert truncate["item_id"] == item.id
    assert truncate["content_index"] == 0
    # Clamped to the audio actually received (playback is assumed real-time from the
    # first delta, and the emulator streams faster than that).
    assert 0 <= truncate["audio_end_ms"] <= item.audio_ms()
    assert item.truncated_ms == truncate["audio_end_ms"]
    assert "error" not in emulator.connection().server_events
    # No audio of the interrupted response is delivered after speech started.
    kinds = [e.type for e in events]
    assert "audio.delta" not in kinds[kinds.index("speech.started"):]


async def test_client_cancels_when_the_server_does_not_interrupt(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    emulator.script = LONG_REPLY
    provider = provider_for(turn_detection={"type": "server_vad", "interrupt_response": False})
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await start_long_reply(emulator, rt, s)
        rt.report_playback(200)  # the application's player is at 200 ms
        await rt.send_audio(SPEECH)
        events = await collect(s, count("response.done"))
        await emulator.wait_for(
            lambda: bool(emulator.connection().events_of("conversation.item.truncate"))
        )
        s.end()
    [cancel] = emulator.connection().events_of("response.cancel")
    [done] = of(events, "response.done")
    assert cancel["response_id"] == done.response_id
    assert done.status == "cancelled"
    assert done.reason == "turn_detected"
    [truncate] = emulator.connection().events_of("conversation.item.truncate")
    assert truncate["audio_end_ms"] == 200  # the reported position, within what arrived
    record = emulator.connection()
    assistant = next(i for i in record.items if i.get("role") == "assistant")
    assert assistant["truncated_ms"] == 200


async def test_reported_playback_beyond_the_received_audio_is_clamped(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    emulator.script = LONG_REPLY
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await start_long_reply(emulator, rt, s)
        rt.report_playback(10**9)
        await rt.interrupt()
        events = await collect(s, count("response.done"))
        s.end()
    [truncate] = emulator.connection().events_of("conversation.item.truncate")
    item = next(i for i in rt.items() if i.role == "assistant")
    # Audio after the interruption is dropped, so the store holds exactly what was cut at.
    assert truncate["audio_end_ms"] == item.audio_ms() > 0
    [done] = of(events, "response.done")
    assert done.status == "cancelled"
    # interrupt() always cancels, even with a server that would.
    assert emulator.connection().events_of("response.cancel")
    assert "error" not in emulator.connection().server_events


async def test_speech_with_nothing_playing_sends_nothing(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    emulator.script = {"transcripts": ["hi"]}
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        await masquerade_openai.wait_realtime(s)
        rt = masquerade_openai.realtime(s)
        await rt.send_audio(SPEECH)
        await rt.send_audio(bytes(4800 * 6))  # 600 ms of silence: the turn ends
        events = await collect(s, count("response.done"))
        s.end()
    assert of(events, "speech.started")
    assert of(events, "speech.stopped")
    assert not emulator.connection().events_of("conversation.item.truncate")
    assert not emulator.connection().events_of("response.cancel")
    [done] = of(events, "response.done")
    assert done.status == "completed"


async def test_truncate_without_audio_is_refused_locally(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    from masquerade import ConfigurationError

    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        with pytest.raises(ConfigurationError, match="no assistant audio"):
            await rt.truncate()
        assert await rt.cancel_response() is False
        s.end()
