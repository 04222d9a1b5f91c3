"""Runway errors and response models keep no raw, unredacted or unknown data."""

from __future__ import annotations

from masquerade import register_secret
from masquerade_runway import RealtimeSession, RunwayError
from masquerade_runway._errors import MAX_ERROR_CHARS, status_error
from masquerade_runway._messages import MessageTranslator


def test_runway_error_keeps_a_redacted_bounded_message() -> None:
    secret = "plain-looking-but-registered-9911"
    register_secret(secret)
    body = f"bad key key_{'ab' * 40} and {secret} " + "x" * 10_000
    err = status_error(400, body, method="POST", path="/v1/realtime_sessions")
    assert isinstance(err, RunwayError)
    assert err.error is not None
    assert len(err.error) <= MAX_ERROR_CHARS + 20
    for leaked in (secret, "ab" * 40):
        assert leaked not in err.error
        assert leaked not in str(err) and leaked not in repr(err)


def test_response_models_do_not_echo_unknown_fields() -> None:
    session = RealtimeSession.model_validate(
        {"id": "s1", "status": "READY", "newSecretField": "s3cr3t-value-123456"}
    )
    assert "s3cr3t" not in repr(session)
    assert "s3cr3t" not in session.model_dump_json()
    assert session.model_extra in (None, {})


def test_deep_data_messages_are_a_non_fatal_error() -> None:
    events: list[object] = []
    translator = MessageTranslator(events.append)
    translator.feed(b'{"type": "client_event", "tool": "x", "args": ' + b"[" * 100_000)
    translator.feed(b"[" * 50_000 + b"]" * 50_000)
    translator.feed(b'{"type": "x", "a": ' + b"[" * 200 + b"]" * 200 + b"}")
    assert [getattr(e, "code", None) for e in events] == ["malformed_message"] * 3
    assert all(getattr(e, "fatal", True) is False for e in events)
