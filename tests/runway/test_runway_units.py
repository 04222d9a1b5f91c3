"""Pure pieces: request mapping, data-message translation, transcript turns."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from masquerade import ConfigurationError, SessionRequest, tool
from masquerade.events import BaseEvent
from masquerade_runway import MessageTranslator, build_session_body

from .tools_for_tests import lookup_order


def translate(*messages: Any) -> list[BaseEvent]:
    events: list[BaseEvent] = []
    translator = MessageTranslator(events.append)
    for message in messages:
        raw = message if isinstance(message, bytes) else json.dumps(message).encode()
        translator.feed(raw, "worker:1")
    translator.transcripts.flush()
    return events


def test_transcription_turns_end_when_a_higher_turn_arrives() -> None:
    events = translate(
        {"type": "transcription", "role": "assistant", "turn": 0, "text": "Hel"},
        {"type": "transcription", "role": "assistant", "turn": 0, "text": "lo"},
        {"type": "transcription", "role": "user", "turn": 0, "text": "Hi"},
        {"type": "transcription", "role": "assistant", "turn": 1, "text": "How"},
        {"type": "transcription", "role": "assistant", "turn": 0, "text": "!"},  # late
        {"type": "transcription", "role": "assistant", "turn": 1, "text": " are you"},
    )
    summary = [(e.type, e.role, e.turn, e.text) for e in events]  # type: ignore[attr-defined]
    assert summary == [
        ("transcript.delta", "assistant", 0, "Hel"),
        ("transcript.delta", "assistant", 0, "lo"),
        ("transcript.delta", "user", 0, "Hi"),
        ("transcript.done", "assistant", 0, "Hello"),
        ("transcript.delta", "assistant", 1, "How"),
        ("transcript.delta", "assistant", 0, "!"),
        ("transcript.delta", "assistant", 1, " are you"),
        ("transcript.done", "user", 0, "Hi"),  # flushed at the end
        ("transcript.done", "assistant", 1, "How are you"),
    ]


def test_client_events_skip_acknowledgements() -> None:
    events = translate(
        {"type": "client_event", "tool": "show", "args": {"id": 1}},
        {"type": "client_event", "tool": "show", "args": {"status": "event_sent"}},
        {"type": "client_event", "tool": "ping"},
    )
    assert [(e.name, e.args) for e in events] == [("show", {"id": 1}), ("ping", {})]  # type: ignore[attr-defined]


def test_unknown_and_malformed_messages() -> None:
    events = translate(
        {"type": "speaking", "value": True},
        b"\xff\xfe not json",
        {"no": "type"},
        {"type": "transcription", "role": "user", "turn": "0", "text": "x"},
        {"type": "transcription", "role": "user", "turn": True, "text": "x"},
        {"type": "client_event", "tool": "x", "args": [1]},
    )
    assert events[0].type == "provider"
    assert events[0].name == "speaking"
    errors = events[1:]
    assert [e.type for e in errors] == ["error"] * 5
    assert all(e.code == "malformed_message" and not e.fatal for e in errors)  # type: ignore[attr-defined]
    assert "from worker:1" in errors[0].message  # type: ignore[attr-defined]


def test_session_body_mapping(caplog: pytest.LogCaptureFixture) -> None:
    @tool(kind="client_event")
    def confetti() -> None:
        """Throw confetti on screen."""

    from masquerade import Host

    host = Host(load_entrypoints=False)
    schemas = [host.tool_schema(t, "runway") for t in (lookup_order, confetti)]
    request = SessionRequest(
        provider="runway", avatar="music-superstar", personality="p", start_script="s",
        max_duration=299.5,
    )
    body = build_session_body(request, schemas)
    assert body == {
        "model": "gwm1_avatars",
        "avatar": {"type": "runway-preset", "presetId": "music-superstar"},
        "maxDuration": 300,
        "personality": "p",
        "startScript": "s",
        "tools": schemas,
    }
    assert body["tools"][0]["type"] == "backend_rpc"
    assert "timeoutSeconds" in body["tools"][0]
    assert body["tools"][1] == {"type": "client_event", "name": "confetti",
                                "description": "Throw confetti on screen.", "parameters": []}
    custom = build_session_body(SessionRequest(provider="runway", avatar="av_123"))
    assert custom["avatar"] == {"type": "custom", "avatarId": "av_123"}
    forced = build_session_body(
        SessionRequest(provider="runway", avatar="influencer", options={"avatar_type": "custom"})
    )
    assert forced["avatar"] == {"type": "custom", "avatarId": "influencer"}

    with caplog.at_level(logging.WARNING, logger="masquerade.runway"):
        build_session_body(SessionRequest(provider="runway", avatar="influencer",
                                          max_duration=600))
    assert "about 300s in practice" in caplog.text


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"max_duration": 1801}, "over Runway's limit of 1800s"),
        ({"avatar": None}, "needs an avatar"),
        ({"options": {"consum": True}}, "unknown Runway session option(s): consum"),
        ({"options": {"avatar_type": "preset"}, "avatar": "me"}, "not a Runway preset"),
        ({"options": {"avatar_type": "robot"}}, "avatar_type"),
    ],
)
def test_session_body_rejects_before_sending(request_fields: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"provider": "runway", "avatar": "influencer", **request_fields}
    with pytest.raises(ConfigurationError) as caught:
        build_session_body(SessionRequest(**fields))
    assert message in str(caught.value)
    assert caught.value.hint


def test_too_many_tools() -> None:
    tools = [{"type": "client_event", "name": f"t{i}", "description": "d"} for i in range(21)]
    with pytest.raises(ConfigurationError, match="at most 20"):
        build_session_body(SessionRequest(provider="runway", avatar="influencer"), tools)
