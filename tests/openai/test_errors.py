"""Bad input: malformed frames, unknown events, missing fields, refused handshakes, and
keys that must never reach a log line, a repr or an error."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

import masquerade_openai
from masquerade import ConfigurationError, Host, ProviderError, SessionRequest
from masquerade.events import MAX_JSON_DEPTH
from masquerade_openai import OpenAIRealtimeProvider
from masquerade_openai.emulator import OpenAIRealtimeEmulator

from .helpers import collect, count, lookup_order, of

pytestmark = pytest.mark.anyio


async def test_bad_frames_become_error_events_and_the_session_goes_on(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        emulator.inject("{not json")
        emulator.inject("[1, 2, 3]")
        emulator.inject({"type": "response.done"})  # no "response"
        emulator.inject({"type": "response.output_audio.delta", "item_id": "x"})  # no delta
        emulator.inject({"type": "error", "error": "a string, not an object"})
        emulator.inject({"type": ["unhashable"]})
        emulator.inject({"type": "brand.new.event", "x": 1})
        emulator.inject({"no_type": True})
        await rt.send_text("still there?")
        events = await collect(s, count("response.done"))
        s.end()
    errors = [e for e in of(events, "error") if e.code == "malformed_event"]
    assert len(errors) == 6
    messages = " | ".join(e.message for e in errors)
    assert "not valid JSON" in messages
    assert "not a JSON object" in messages
    assert "'response.done' event" in messages
    assert "missing field 'response'" in messages
    assert "missing field 'delta'" in messages
    assert all(not e.fatal for e in errors)
    assert errors[0].raw == "{not json"
    unknown = {e.name for e in of(events, "provider")}
    assert {"brand.new.event", "None"} <= unknown
    # ...and the conversation carried on.
    [answer] = [e for e in of(events, "transcript.done") if e.role == "assistant"]
    assert answer.text == "You said: still there?"
    assert s.result is not None
    assert s.result.outcome == "completed"


async def test_frames_nesting_too_deep_are_refused_and_shallow_ones_kept(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    deep = "[" * (MAX_JSON_DEPTH + 2) + "]" * (MAX_JSON_DEPTH + 2)
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        emulator.inject('{"type": "brand.new.event", "x": ' + deep + "}")
        emulator.inject('{"type": "rate_limits.updated", "rate_limits": ' + deep + "}")
        emulator.inject('{"type": "conversation.item.deleted", "item_id": "x", "y": ' + deep + "}")
        # Brackets inside strings only make the cheap count stricter: still kept.
        emulator.inject({"type": "brand.new.event", "x": "[" * (MAX_JSON_DEPTH + 2)})
        await rt.send_text("still there?")
        events = await collect(s, count("response.done"))
        s.end()
    errors = [e for e in of(events, "error") if e.code == "malformed_event"]
    assert len(errors) == 3
    assert all("nests deeper" in e.message for e in errors)
    kept = [e for e in of(events, "provider") if e.name == "brand.new.event"]
    assert [e.payload["x"] for e in kept] == ["[" * (MAX_JSON_DEPTH + 2)]


async def test_server_errors_are_classified(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_event({"type": "conversation.item.truncate", "item_id": "nope",
                             "content_index": 0, "audio_end_ms": 5})
        await rt.send_event({"type": "response.cancel"})
        await rt.send_event({"type": "no.such.client.event"})
        events = await collect(s, count("error", 3))
        emulator.inject({"type": "error", "error": {"type": "invalid_request_error",
                                                    "code": "insufficient_quota",
                                                    "message": "You exceeded your quota."}})
        result = await s.wait()
        events = await collect(s, count("ended"))
    codes = [(e.code, e.fatal) for e in of(events, "error")]
    assert codes[:3] == [("item_not_found", False), ("response_cancel_not_active", False),
                         ("invalid_value", False)]
    assert ("insufficient_quota", True) in codes
    assert result.outcome == "failed"
    assert result.failure_code == "insufficient_quota"


async def test_bad_key_at_handshake_is_a_clear_401(
    emulator: OpenAIRealtimeEmulator, host_for: Callable[..., Host]
) -> None:
    key = "sk-proj-" + "x" * 40
    provider = OpenAIRealtimeProvider(api_key=key, base_url=emulator.base_url)
    with pytest.raises(ProviderError) as info:
        await provider.create(SessionRequest(provider="openai"))
    error = info.value
    assert error.status_code == 401
    assert error.code == "invalid_api_key"
    assert not error.retryable
    assert "OPENAI_API_KEY" in error.hint
    assert key not in str(error)
    assert key not in repr(error)
    async with host_for(provider) as host:
        result = await host.run_session(SessionRequest(provider="openai"))
    assert result.outcome == "failed"
    assert "HTTP 401" in (result.failure or "")
    assert key not in result.model_dump_json()


async def test_unreachable_server_is_retryable(host_for: Callable[..., Host]) -> None:
    provider = OpenAIRealtimeProvider(api_key="sk-test-0123456789abcdef",
                                      base_url="http://127.0.0.1:9/v1", open_timeout=2)
    with pytest.raises(ProviderError) as info:
        await provider.create(SessionRequest(provider="openai"))
    assert info.value.retryable
    assert "could not connect" in info.value.message


async def test_beta_header_is_refused_like_the_service(
    emulator: OpenAIRealtimeEmulator, provider_for: Callable[..., OpenAIRealtimeProvider]
) -> None:
    provider = provider_for(headers={"OpenAI-Beta": "realtime=v1"})
    with pytest.raises(ProviderError) as info:
        await provider.create(SessionRequest(provider="openai"))
    error = info.value
    assert "refused the session" in error.message
    assert "no longer supported" in error.message
    assert error.code == "beta_api_shape_disabled"
    assert not error.retryable
    assert "GA" in error.hint


async def test_no_key_in_any_log_line(
    emulator: OpenAIRealtimeEmulator,
    host_for: Callable[..., Host],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # websockets logs handshake headers at DEBUG
    provider = emulator.provider(renewal={"renew_after": None})
    request = SessionRequest(provider="openai", tools=[lookup_order])
    async with host_for(provider) as host, host.session(request) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_text('call lookup_order {"order_id": "A1"}')
        await collect(s, count("response.done", 2))
        emulator.drop()  # reconnect: a second handshake
        await collect(s, count("provider", name="session.renewed"))
        s.end()
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "Authorization" in text  # the handshake was logged...
    assert emulator.api_key not in text  # ...without the key
    assert "[redacted]" in text
    assert emulator.api_key not in repr(provider) + repr(rt) + repr(provider.defaults)


def test_missing_key_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import anyio

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = OpenAIRealtimeProvider()
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY") as info:
        anyio.run(provider.create, SessionRequest(provider="openai"))
    assert "emulate openai" in info.value.hint


def test_unknown_and_invalid_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown OpenAI Realtime option") as info:
        OpenAIRealtimeProvider(api_key="k" * 20, temperature=0.3)
    assert "turn_detection" in info.value.hint
    with pytest.raises(ConfigurationError, match="max_size"):
        OpenAIRealtimeProvider(api_key="k" * 20, max_size=1024)
    with pytest.raises(ConfigurationError, match="max_reconnects"):
        OpenAIRealtimeProvider(api_key="k" * 20, renewal={"max_reconnects": -1})
