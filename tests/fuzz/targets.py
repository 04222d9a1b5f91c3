"""Parsers of outside input and the guarantee each keeps, as plain functions.

Every target takes one input, runs it through a parser exactly as a session would, and
raises ``AssertionError`` when a guarantee breaks: an exception other than the parser's
documented one escaped, or an event that does not validate against its own model was
produced. The hypothesis tests (``test_parsers_property.py``) and the long fuzz run
(``benchmarks/fuzz_parsers.py``) share them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from masquerade import EventParseError, ToolArgumentsError, tool
from masquerade.events import EVENT_TYPES, BaseEvent, parse_event
from masquerade_openai import WebhookVerificationError, sign_webhook, verify_webhook
from masquerade_runway._messages import MessageTranslator
from masquerade_runway._tool_rpc import MAX_RAW_ARGUMENTS, WORKER_PREFIX, rpc_arguments

# A throwaway signing secret built at import (a literal would read like a leaked one).
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"fuzzing-secret-fuzzing-secret").decode()


def check_event(event: object) -> None:
    """``event`` is an event of a known type that validates against its own model."""
    assert isinstance(event, BaseEvent), f"not an event: {event!r:.200}"
    cls = EVENT_TYPES.get(event.type)
    assert cls is type(event), f"{type(event).__name__} has type {event.type!r}"
    cls.model_validate(event.model_dump())  # raises ValidationError when it does not


def provider_frame(data: str | bytes | Mapping[str, Any]) -> None:
    """A normalized event from the wire: an event, or EventParseError."""
    try:
        event = parse_event(data)
    except EventParseError:
        return
    check_event(event)


def data_message(payload: bytes, sender: str | None = "worker:fuzz") -> None:
    """A Runway data message: never raises, every event valid."""
    events: list[BaseEvent] = []
    translator = MessageTranslator(events.append)
    translator.feed(payload, sender)
    translator.feed(b'{"type":"transcription","role":"user","turn":99,"text":"x"}', sender)
    translator.transcripts.flush()
    for event in events:
        check_event(event)


@tool(name="fuzz_target")
def _fuzz_tool(order_id: str, count: int = 1, tags: list[str] | None = None) -> str:
    return order_id


def tool_arguments(arguments: str | bytes | Mapping[str, Any]) -> None:
    """Tool arguments: valid arguments, or ToolArgumentsError."""
    try:
        _fuzz_tool.parse_arguments(arguments)  # type: ignore[arg-type]
    except ToolArgumentsError:
        pass


def rpc_payload(payload: str) -> None:
    """A Runway RPC payload: decoded arguments or bounded raw text, then tool arguments."""
    arguments = rpc_arguments(payload)
    assert isinstance(arguments, dict | str)
    if isinstance(arguments, str):
        assert len(arguments) <= MAX_RAW_ARGUMENTS
    tool_arguments(arguments)


def webhook(body: bytes, headers: Mapping[str, str], *, sign: bool = False) -> None:
    """A webhook request: a verified event, or WebhookVerificationError (never a 500)."""
    if sign:
        try:
            headers = {**sign_webhook(body, WEBHOOK_SECRET), **headers}
        except UnicodeDecodeError:
            pass
    try:
        verify_webhook(body, headers, WEBHOOK_SECRET, event_type=None, replay_store=None)
    except WebhookVerificationError:
        pass


def sender_identity(sender: str) -> None:
    """Only worker identities get data messages through."""
    from masquerade_runway._room import DataMessage
    from masquerade_runway._session import RunwaySession

    events: list[BaseEvent] = []

    class Owner:
        def emit(self, event: BaseEvent) -> bool:
            events.append(event)
            return False

    session = RunwaySession.__new__(RunwaySession)
    session._translator = MessageTranslator(events.append)
    session._owner = Owner()  # type: ignore[assignment]
    session._dropped_data = 0
    forged = b'{"type":"transcription","role":"assistant","turn":0,"text":"forged"}'
    session._on_data(DataMessage(payload=forged, sender=sender))
    session._translator.transcripts.flush()
    kinds = [e.type for e in events]
    if sender.startswith(WORKER_PREFIX):
        assert kinds == ["transcript.delta", "transcript.done"], kinds
    else:
        assert kinds == ["error"], kinds
    for event in events:
        check_event(event)


def _openai_session() -> Any:
    from masquerade_openai._options import RealtimeOptions
    from masquerade_openai._session import OpenAIRealtimeSession

    options = RealtimeOptions.build({"api_key": "sk-fuzz-" + "f" * 32})
    return OpenAIRealtimeSession(provider="openai", options=options, request=None,
                                 url="ws://127.0.0.1:9/v1/realtime", headers={})


OPENAI_TYPES: list[str] = sorted(_openai_session()._parts.translator.handlers)


def openai_frame(frame: str | bytes | Mapping[str, Any]) -> None:
    """An OpenAI Realtime server frame through the session's handler table, as the
    receive loop handles it: never raises, every event it emits valid."""
    import json

    session = _openai_session()
    events: list[Any] = []
    parts = session._parts
    translator = parts.translator
    translator.emit = parts.turns.emit = parts.tools.emit = events.append
    if isinstance(frame, str | bytes):
        try:
            data = json.loads(frame)
        except Exception as exc:  # the receive loop's own guard
            translator._handler_failed(frame, None, exc)
        else:
            translator.dispatch(data)
    else:
        translator.dispatch(dict(frame))
    for event in events:
        check_event(event)


TARGETS: dict[str, Callable[..., None]] = {
    "provider_frame": provider_frame,
    "openai_frame": openai_frame,
    "data_message": data_message,
    "tool_arguments": tool_arguments,
    "rpc_payload": rpc_payload,
    "webhook": webhook,
    "sender_identity": sender_identity,
}

__all__ = ["TARGETS", "check_event", *TARGETS]


def json_dumps(value: Any) -> str:
    import json

    return json.dumps(value)
