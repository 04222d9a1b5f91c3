"""Runway's data-channel messages -> masquerade events.

* ``{"type":"transcription","role":r,"turn":n,"text":delta}`` -> ``transcript.delta``; a
  turn is final (``transcript.done``) when a higher turn of the same role arrives, and
  every open turn is flushed when the call ends.
* ``{"type":"client_event","tool":name,"args":{...}}`` -> ``client_event``, except the
  acknowledgements whose ``args.status`` is ``"event_sent"``.
* any other ``type`` -> a ``provider`` event with the raw message; a message that is not a
  JSON object with a ``type`` -> a non-fatal ``error`` event (code ``malformed_message``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from masquerade.errors import EventParseError
from masquerade.events import (
    BaseEvent,
    ClientEvent,
    ErrorEvent,
    ProviderEvent,
    Role,
    TranscriptDelta,
    TranscriptDone,
    decode_json,
)

__all__ = ["TranscriptAccumulator", "MessageTranslator"]

_ROLES = ("user", "assistant")


class TranscriptAccumulator:
    """Turns transcription deltas into delta and done events (see the module docs)."""

    def __init__(self, emit: Callable[[BaseEvent], object]) -> None:
        self._emit = emit
        # role -> (turn, pieces) of the turn in progress
        self._open: dict[Role, tuple[int, list[str]]] = {}
        self._last_done: dict[Role, int] = {}

    def add(self, role: Role, turn: int, text: str) -> None:
        current = self._open.get(role)
        if current is not None and turn > current[0]:
            self._close(role)
            current = None
        if current is None:
            if turn <= self._last_done.get(role, -1):
                # A late delta of a turn already reported final: show it, keep the turn closed.
                self._emit(TranscriptDelta(role=role, text=text, turn=turn))
                return
            current = self._open[role] = (turn, [])
        elif turn < current[0]:
            self._emit(TranscriptDelta(role=role, text=text, turn=turn))
            return
        current[1].append(text)
        self._emit(TranscriptDelta(role=role, text=text, turn=turn))

    def _close(self, role: Role) -> None:
        turn, pieces = self._open.pop(role)
        self._last_done[role] = turn
        self._emit(TranscriptDone(role=role, text="".join(pieces), turn=turn))

    def flush(self) -> None:
        """Report every open turn as final (the call is over)."""
        for role in list(self._open):
            self._close(role)


class MessageTranslator:
    """Translates one data message at a time and emits the resulting events."""

    def __init__(self, emit: Callable[[BaseEvent], object]) -> None:
        self._emit = emit
        self.transcripts = TranscriptAccumulator(emit)
        self.acknowledgements = 0

    def _malformed(self, why: str, raw: Any, sender: str | None) -> None:
        origin = f" from {sender}" if sender else ""
        self._emit(
            ErrorEvent(
                code="malformed_message",
                message=f"ignored a data message{origin}: {why}",
                fatal=False,
                raw=raw,
            )
        )

    def feed(self, payload: bytes, sender: str | None = None) -> None:
        try:
            message = decode_json(payload)
        except EventParseError as exc:
            self._malformed(exc.message, payload[:2000].decode("utf-8", "replace"), sender)
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            self._malformed("it is not a JSON object with a 'type'", message, sender)
            return
        kind = message["type"]
        if kind == "transcription":
            role, turn, text = message.get("role"), message.get("turn"), message.get("text")
            if (
                role not in _ROLES
                or not isinstance(turn, int)
                or isinstance(turn, bool)
                or not isinstance(text, str)
            ):
                self._malformed(
                    "a transcription needs role user|assistant, an integer turn and a text",
                    message,
                    sender,
                )
                return
            self.transcripts.add(cast(Role, role), turn, text)
        elif kind == "client_event":
            name, args = message.get("tool"), message.get("args", {})
            if args is None:
                args = {}
            if not isinstance(name, str) or not name or not isinstance(args, dict):
                self._malformed(
                    "a client_event needs a tool name and an args object", message, sender
                )
                return
            if args.get("status") == "event_sent":
                self.acknowledgements += 1  # the worker's acknowledgement: not a new event
                return
            self._emit(ClientEvent(name=name, args=args))
        else:
            self._emit(ProviderEvent(name=kind, payload=message))
