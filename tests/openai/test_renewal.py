"""Session renewal: reconnect with backoff, replay the conversation, keep the call going."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import masquerade_openai
from masquerade import Host, SessionRequest
from masquerade_openai import OpenAIRealtimeProvider
from masquerade_openai.emulator import OpenAIRealtimeEmulator

from .helpers import collect, count, lookup_order, of

pytestmark = pytest.mark.anyio


async def talk_then_break(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host: Host,
    breaker: Callable[[], None],
) -> tuple[list[object], masquerade_openai.OpenAIRealtimeSession, object]:
    request = SessionRequest(provider="openai", tools=[lookup_order])
    async with host.session(request) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_text("my name is Ada")
        await collect(s, count("response.done"))
        await rt.send_text('call lookup_order {"order_id": "A7"}')
        await collect(s, count("response.done", 3))
        breaker()
        await collect(s, count("provider", name="session.renewed"))
        # The new server session knows the conversation: the model recalls it.
        await rt.send_text("what did I say")
        events = await collect(s, count("response.done", 4))
        s.end()
    return events, rt, s


async def test_dropped_socket_reconnects_and_replays(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    async with host_for(provider) as host:
        events, rt, s = await talk_then_break(emulator, provider, host, emulator.drop)
    answer = [e for e in of(events, "transcript.done") if e.role == "assistant"][-1]
    assert answer.text.startswith("Earlier you said:")
    assert len(emulator.connections) == 2
    assert rt.reconnects == 1
    assert len(rt.server_session_ids) == 2
    assert rt.id == rt.server_session_ids[0]  # the provider id stays stable
    replayed = emulator.connection(1).events_of("conversation.item.create")
    kinds = [(e["item"]["type"], e["item"].get("role")) for e in replayed]
    assert kinds[:5] == [
        ("message", "user"), ("message", "assistant"), ("message", "user"),
        ("function_call", None), ("function_call_output", None),
    ]
    assert replayed[1]["item"]["content"] == [
        {"type": "output_text", "text": "You said: my name is Ada"}
    ]
    # The new connection was configured like the first (tools included) before replay.
    updates = emulator.connection(1).events_of("session.update")
    assert updates
    assert updates[0]["session"]["tools"][0]["name"] == "lookup_order"
    [renewed] = [e for e in of(events, "provider") if e.name == "session.renewed"]
    assert renewed.payload["replayed_items"] == 6
    # Replayed turns are not announced twice.
    user_turns = [e.text for e in of(events, "transcript.done") if e.role == "user"]
    assert user_turns.count("my name is Ada") == 1
    assert s.result is not None
    assert s.result.outcome == "completed"


@pytest.mark.parametrize("code", [1011, 1012, 1001])
async def test_recoverable_close_codes_reconnect(
    code: int,
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    async with host_for(provider) as host:
        events, rt, _ = await talk_then_break(
            emulator, provider, host, lambda: emulator.close(code, "restart")
        )
    assert rt.reconnects == 1
    assert next(e for e in of(events, "provider") if e.name == "session.reconnecting").payload[
        "reason"
    ] == f"connection closed with code {code}"


async def test_expired_session_is_renewed(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    async with host_for(provider) as host:
        events, rt, _ = await talk_then_break(emulator, provider, host, emulator.expire)
    [expired] = of(events, "error")
    assert expired.code == "session_expired"
    assert not expired.fatal
    assert rt.reconnects == 1


async def test_proactive_renewal_before_the_time_limit(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    # Text replies: no audio "playing" to wait for before the renewal's idle moment.
    provider = provider_for(output_modalities=["text"],
                            renewal={"renew_after": 0.3, "idle_grace": 1.0})
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_text("remember the number 42")
        events = await collect(s, count("provider", name="session.renewed"))
        await rt.send_text("what did I say")
        events = await collect(s, count("response.done", 2))
        s.end()
    answer = [e for e in of(events, "transcript.done") if e.role == "assistant"][-1]
    assert answer.text == "Earlier you said: remember the number 42"
    # The old socket was closed cleanly (the emulator's thread records it once it saw it).
    await emulator.wait_for(lambda: emulator.connection(0).closed)
    assert emulator.connection(0).close_code == 1000
    assert not of(events, "error")


async def test_reconnects_are_bounded(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    provider = provider_for(renewal={"max_reconnects": 1})
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        emulator.drop()
        await collect(s, count("provider", name="session.renewed"))
        emulator.drop(index=1)
        result = await s.wait()
    assert rt.reconnects == 1
    assert result.outcome == "failed"
    assert result.failure_code == "max_reconnects"
    assert "max_reconnects" in (result.failure or "")


async def test_without_renewal_a_drop_fails_the_session(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    provider = provider_for(renewal={"enabled": False})
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        await masquerade_openai.wait_realtime(s)
        emulator.drop()
        result = await s.wait()
    assert result.outcome == "failed"
    assert result.failure_code == "close_1006"
    assert "1006" in (result.failure or "")


async def test_reconnect_that_keeps_failing_gives_up_with_the_cause(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    provider = provider_for(renewal={"attempts": 2})
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        await masquerade_openai.wait_realtime(s)
        emulator.stop()  # nothing listens any more
        result = await s.wait()
    assert result.outcome == "failed"
    assert "reconnecting failed after 2 attempt(s)" in (result.failure or "")


async def test_clean_close_mid_turn_is_reported(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    emulator.script = {"pace": 0.01}
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        # ~4 s of paced answer: the close always lands mid-turn, even under load
        await rt.send_text("a long answer please, " + "with many words in it to speak " * 12)
        await collect(s, count("audio.delta", 2))
        emulator.close(1000, "bye")
        result = await s.wait()
        events = await collect(s, count("ended"))
    [mid] = [e for e in of(events, "error") if e.code == "closed_mid_turn"]
    assert not mid.fatal
    assert "1000" in mid.message
    assert result.outcome == "completed"
    assert rt.close_code == 1000
    assert (await rt.result()).extra["close_code"] == 1000


async def test_clean_close_when_idle_ends_the_call(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        await masquerade_openai.wait_realtime(s)
        emulator.close(1000, "done")
        result = await s.wait()
        events = await collect(s, count("ended"))
    assert result.outcome == "completed"
    assert not [e for e in of(events, "error") if e.code == "closed_mid_turn"]
    assert [e for e in of(events, "provider") if e.name == "connection.closed"]
