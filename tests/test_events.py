"""The normalized event vocabulary and its lenient parsing."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from masquerade import EventParseError, JoinCredentials, parse_event
from masquerade.events import (
    EVENT_TYPES,
    AudioDelta,
    ProviderEvent,
    ToolResult,
    TranscriptDone,
    event_adapter,
)


def test_every_design_event_type_exists() -> None:
    assert set(EVENT_TYPES) == {
        "status",
        "ready",
        "transcript.delta",
        "transcript.done",
        "speech.started",
        "speech.stopped",
        "audio.delta",
        "response.started",
        "response.done",
        "tool.call",
        "tool.result",
        "client_event",
        "error",
        "ended",
        "provider",
    }


def test_known_event_parses_from_json_text_and_bytes() -> None:
    raw = {"type": "transcript.done", "role": "user", "text": "hello", "turn": 3}
    for data in (raw, json.dumps(raw), json.dumps(raw).encode()):
        event = parse_event(data)
        assert isinstance(event, TranscriptDone)
        assert (event.role, event.text, event.turn) == ("user", "hello", 3)


def test_unknown_type_becomes_provider_event_with_raw_payload() -> None:
    event = parse_event({"type": "rate_limits.updated", "limits": [1, 2]})
    assert isinstance(event, ProviderEvent)
    assert event.name == "rate_limits.updated"
    assert event.payload["limits"] == [1, 2]


def test_missing_type_is_a_provider_event() -> None:
    event = parse_event({"hello": "world"})
    assert isinstance(event, ProviderEvent) and event.name == "None"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{nope", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"type": "transcript.done", "role": "robot", "text": "x"}, "role"),
        ({"type": "tool.call", "name": "x"}, "call_id"),
    ],
)
def test_malformed_events_raise_a_clear_error(data: object, message: str) -> None:
    with pytest.raises(EventParseError, match=message) as info:
        parse_event(data)  # type: ignore[arg-type]
    assert info.value.raw is not None


def test_extra_fields_are_ignored() -> None:
    event = parse_event({"type": "speech.started", "audio_ms": 5, "future_field": True})
    assert event.type == "speech.started"


def test_audio_stays_base64_until_read() -> None:
    pcm = bytes(range(256)) * 10
    event = AudioDelta(data=base64.b64encode(pcm).decode())
    assert "audio" not in event.__dict__  # not decoded yet
    assert event.audio == pcm
    assert event.audio is event.audio  # decoded once
    assert base64.b64encode(pcm).decode()[:20] not in repr(event)


def test_tool_result_output_text() -> None:
    assert ToolResult(call_id="1", name="t", output="plain").output_text() == "plain"
    assert ToolResult(call_id="1", name="t", output={"a": 1}).output_text() == '{"a": 1}'
    failed = ToolResult(call_id="1", name="t", error="bad", error_type="exception")
    assert json.loads(failed.output_text()) == {"error": "bad"}
    assert not failed.ok


def test_join_credentials_hide_secrets() -> None:
    creds = JoinCredentials(
        provider="runway",
        kind="session_key",
        public={"sessionId": "abc"},
        secrets={"sessionKey": "super-secret-session-key"},  # type: ignore[dict-item]
    )
    assert "super-secret" not in repr(creds)
    assert "super-secret" not in creds.model_dump_json()
    assert creds.reveal() == {"sessionId": "abc", "sessionKey": "super-secret-session-key"}


@given(st.dictionaries(st.text(), st.text() | st.integers() | st.none(), max_size=5), st.text())
def test_parsing_never_crashes_on_arbitrary_objects(payload: dict[str, object], kind: str) -> None:
    payload["type"] = kind
    try:
        event = parse_event(payload)
    except EventParseError:
        return
    assert event.type in EVENT_TYPES
    # whatever parsed round-trips through the discriminated union
    assert event_adapter.validate_python(event.model_dump()).type == event.type
