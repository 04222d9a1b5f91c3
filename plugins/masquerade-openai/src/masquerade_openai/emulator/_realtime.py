"""One emulated GA Realtime session: the server side of one websocket.

:class:`RealtimeServerSession` answers the 11 GA client events the way the service does
(event names, field names, error codes) through one dispatch table: the session itself
handles ``session.update`` and the input audio buffer (with server VAD: any non-zero
sample is speech), :class:`._items.ServerConversation` the conversation items, and
:class:`._responses.ResponseRunner` the responses of the scripted model. Everything runs
on the emulator's asyncio loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._audio import AUDIO_CHUNK_B64
from ._autoplay import play_opening
from ._items import ServerConversation
from ._responses import ResponseRunner
from ._script import EmulatorScript
from ._wire import WsConnection

if TYPE_CHECKING:
    from ._calls import CallRecord

__all__ = ["ConnectionRecord", "RealtimeServerSession", "AUDIO_CHUNK_B64"]

_SESSION_FIELDS = frozenset(
    {
        "type", "audio", "include", "instructions", "max_output_tokens", "model",
        "output_modalities", "prompt", "tool_choice", "tools", "tracing", "truncation",
        "parallel_tool_calls", "reasoning", "id", "object", "expires_at",
    }
)
_CLIENT_EVENTS = (
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
    "input_audio_buffer.clear", "conversation.item.create", "conversation.item.retrieve",
    "conversation.item.truncate", "conversation.item.delete", "response.create",
    "response.cancel", "output_audio_buffer.clear",
)


@dataclass
class ConnectionRecord:
    """What one websocket did, for tests to assert against.

    Attributes:
        index: 0 for the first connection, 1 for the next...
        query: the handshake's query (``model`` or ``call_id``).
        headers: handshake headers, without ``authorization``.
        client_events: every client event received, parsed, in order (``append``
            events keep their size instead of the audio).
        server_events: the type of every event sent, in order.
        session_id: the server session id.
        close_code: the close code, once closed.
    """

    index: int
    query: dict[str, str]
    headers: dict[str, str]
    client_events: list[dict[str, Any]] = field(default_factory=list)
    server_events: list[str] = field(default_factory=list)
    session_id: str = ""
    closed: bool = False
    close_code: int | None = None
    session: dict[str, Any] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.client_events if e.get("type") == kind]


def default_session(model: str, expires_at: int) -> dict[str, Any]:
    """The session object a new server session starts from (the service's defaults)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": f"sess_{uuid.uuid4().hex[:20]}",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "You are a helpful assistant.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                    "silence_duration_ms": 500, "idle_timeout_ms": None,
                    "create_response": True, "interrupt_response": True,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy",
                       "speed": 1.0},
        },
    }


def merge_session(session: dict[str, Any], update: Mapping[str, Any]) -> None:
    """Apply a partial session update (audio sides merge; ids never change)."""
    for key, value in update.items():
        if key == "audio" and isinstance(value, Mapping):
            for side in ("input", "output"):
                if isinstance(value.get(side), Mapping):
                    session["audio"][side].update(value[side])
        elif key not in ("id", "object", "expires_at"):
            session[key] = value


class RealtimeServerSession:
    """The emulated server session behind one websocket.

    ``call``: the SIP or WebRTC call it is attached to (a sideband), if any; ``preset``:
    the configuration of the ephemeral key it was opened with, if any.
    """

    def __init__(
        self,
        connection: WsConnection,
        record: ConnectionRecord,
        script: EmulatorScript,
        *,
        model: str,
        call: CallRecord | None = None,
        preset: Mapping[str, Any] | None = None,
    ) -> None:
        self.conn = connection
        self.record = record
        self.script = script
        self.call = call
        self.ids = itertools.count(1)
        self.session = default_session(model, int(time.time() + script.max_session_s))
        self.session_id = self.session["id"]
        record.session_id = self.session_id
        if call is not None:
            # A call speaks its negotiated codec (G.711 for SIP) and starts from the
            # configuration it was accepted or created with.
            self.session["audio"]["input"]["format"] = {"type": "audio/pcmu"}
            self.session["audio"]["output"]["format"] = {"type": "audio/pcmu"}
            if call.kind == "webrtc":  # WebRTC negotiates Opus: the events carry no audio
                self.session["audio"]["input"]["format"] = {"type": "audio/pcm", "rate": 24000}
                self.session["audio"]["output"]["format"] = {"type": "audio/pcm", "rate": 24000}
            merge_session(self.session, call.accept_config or {})
        if preset:  # an ephemeral key's configuration
            merge_session(self.session, preset)
        self.conversation = ServerConversation(self)
        self.responses = ResponseRunner(self)
        # input audio / VAD
        self.buffer = bytearray()
        self.timeline_ms = 0.0
        self.speaking = False
        self.silence_ms = 0.0
        self.speech_item: str | None = None
        self.transcripts = list(script.transcripts)
        self.opening: asyncio.Task[None] | None = None
        self.handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "session.update": self.on_session_update,
            "input_audio_buffer.append": self.on_append,
            "input_audio_buffer.commit": self.on_commit,
            "input_audio_buffer.clear": self.on_clear,
            "output_audio_buffer.clear": self.on_output_clear,
            "response.create": self.responses.on_create,
            "response.cancel": self.responses.on_cancel,
            **self.conversation.handlers(),
        }

    @property
    def items(self) -> list[dict[str, Any]]:
        """The conversation's items, in order."""
        return self.conversation.items

    # ------------------------------------------------------------ sending
    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:18]}"

    def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", f"event_{next(self.ids)}")
        self.record.server_events.append(str(event.get("type")))
        self.conn.send_json(event)

    def error(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        client_event_id: Any = None,
        kind: str = "invalid_request_error",
    ) -> None:
        self.send({"type": "error", "error": {"type": kind, "code": code, "message": message,
                                              "param": param, "event_id": client_event_id}})

    # ------------------------------------------------------------ main loop
    async def run(self) -> None:
        self.send({"type": "session.created", "session": self.session})
        expiry = asyncio.get_running_loop().call_later(self.script.max_session_s, self.expire)
        try:
            async for message in self.conn.messages():
                await self.handle(message)
        finally:
            expiry.cancel()
            if self.opening is not None:
                self.opening.cancel()
            self.record.closed = True
            self.record.close_code = self.conn.close_code
            await self.responses.stop()

    def expire(self) -> None:
        """The session hit its time limit: say so, then close."""
        minutes = self.script.max_session_s / 60
        self.error("session_expired",
                   f"Your session hit the maximum duration of {minutes:g} minutes.")
        self.conn.start_close(1000, "session expired")

    async def handle(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            self.error("invalid_json", "The server could not parse the event: it is not JSON.")
            return
        if not isinstance(event, dict):
            self.error("invalid_json", "The event must be a JSON object.")
            return
        kind = event.get("type")
        logged = dict(event)
        if kind == "input_audio_buffer.append" and isinstance(logged.get("audio"), str):
            logged["audio"] = f"<{len(logged['audio'])} base64 chars>"
        self.record.client_events.append(logged)
        eid = event.get("event_id")
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            self.error(
                "invalid_value",
                f"Invalid value: {kind!r}. Supported values are: {', '.join(_CLIENT_EVENTS)}.",
                param="type",
                client_event_id=eid,
            )
            return
        try:
            await handler(event)
        except KeyError as exc:
            self.error("missing_required_parameter",
                       f"Missing required parameter: '{exc.args[0]}'.",
                       param=str(exc.args[0]), client_event_id=eid)
        except (TypeError, ValueError, AttributeError) as exc:
            self.error("invalid_value", f"Invalid event: {exc}", client_event_id=eid)
        await self.conn.drain()

    # ------------------------------------------------------------ session
    async def on_session_update(self, event: dict[str, Any]) -> None:
        update = event["session"]
        eid = event.get("event_id")
        if not isinstance(update, dict):
            raise TypeError("session must be an object")
        if update.get("type") not in ("realtime", "transcription"):
            self.error("missing_required_parameter",
                       "Missing required parameter: 'session.type'.",
                       param="session.type", client_event_id=eid)
            return
        unknown = sorted(set(update) - _SESSION_FIELDS)
        if unknown:
            self.error("unknown_parameter", f"Unknown parameter: 'session.{unknown[0]}'.",
                       param=f"session.{unknown[0]}", client_event_id=eid)
            return
        voice = (update.get("audio") or {}).get("output", {}).get("voice")
        if voice is not None and self.responses.produced_audio and voice != (
            self.session["audio"]["output"].get("voice")
        ):
            self.error("cannot_update_voice",
                       "Cannot update a conversation's voice if assistant audio is present.",
                       param="session.audio.output.voice", client_event_id=eid)
            return
        merge_session(self.session, update)
        self.record.session = json.loads(json.dumps(self.session))
        self.send({"type": "session.updated", "session": self.session})
        if self.script.opening and self.opening is None:  # plays once, by itself
            self.opening = asyncio.get_running_loop().create_task(play_opening(self))

    # ------------------------------------------------------------ input audio
    def _bytes_per_ms(self) -> float:
        fmt = self.session["audio"]["input"].get("format") or {}
        return 48.0 if fmt.get("type", "audio/pcm") == "audio/pcm" else 8.0

    def _turn_detection(self) -> dict[str, Any] | None:
        detection = self.session["audio"]["input"].get("turn_detection")
        return detection if isinstance(detection, dict) else None

    async def on_append(self, event: dict[str, Any]) -> None:
        try:
            chunk = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
            self.error("invalid_value", "Invalid 'audio': not valid base64.", param="audio",
                       client_event_id=event.get("event_id"))
            return
        chunk_ms = len(chunk) / self._bytes_per_ms()
        detection = self._turn_detection()
        self.buffer.extend(chunk)
        if detection is None:
            self.timeline_ms += chunk_ms
            return
        speech = chunk.count(0) != len(chunk)
        responses = self.responses
        if speech and not self.speaking:
            self.speaking = True
            self.silence_ms = 0.0
            self.speech_item = self.new_id("item")
            self.send({"type": "input_audio_buffer.speech_started",
                       "audio_start_ms": int(self.timeline_ms), "item_id": self.speech_item})
            if responses.task is not None and detection.get("interrupt_response", True):
                await responses.cancel("turn_detected")
        elif speech:
            self.silence_ms = 0.0
        elif self.speaking:
            self.silence_ms += chunk_ms
            if self.silence_ms >= float(detection.get("silence_duration_ms") or 500):
                self.speaking = False
                self.send({"type": "input_audio_buffer.speech_stopped",
                           "audio_end_ms": int(self.timeline_ms + chunk_ms),
                           "item_id": self.speech_item})
                self.timeline_ms += chunk_ms
                self._commit(self.speech_item, client_event_id=None)
                if detection.get("create_response", True) and responses.task is None:
                    responses.start({})
                return
        else:
            # Silence before any speech is not kept (VAD trims it).
            self.buffer.clear()
        self.timeline_ms += chunk_ms

    def _commit(self, item_id: str | None, client_event_id: Any) -> bool:
        ms = len(self.buffer) / self._bytes_per_ms()
        if ms < 100:
            self.error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {ms:.2f}ms of audio.",
                client_event_id=client_event_id,
            )
            return False
        item_id = item_id or self.new_id("item")
        heard = self.transcripts.pop(0) if self.transcripts else "(inaudible)"
        self.buffer.clear()
        self._user_turn(item_id, heard, delta=True, seconds=round(ms / 1000, 3))
        return True

    def _user_turn(self, item_id: str, heard: str, *, delta: bool,
                   seconds: float | None = None) -> None:
        """A committed user audio item that the model heard as ``heard``."""
        previous = self.conversation.last_id
        self.send({"type": "input_audio_buffer.committed", "previous_item_id": previous,
                   "item_id": item_id})
        item: dict[str, Any] = {
            "id": item_id, "object": "realtime.item", "type": "message", "role": "user",
            "status": "completed", "content": [{"type": "input_audio", "transcript": None}],
        }
        self.conversation.add(item, previous)
        # The model hears the audio whether or not transcription is on.
        item["content"][0]["transcript"] = heard
        if self.session["audio"]["input"].get("transcription"):
            if delta:
                self.send({"type": "conversation.item.input_audio_transcription.delta",
                           "item_id": item_id, "content_index": 0, "delta": heard})
            completed: dict[str, Any] = {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id, "content_index": 0, "transcript": heard}
            if seconds is not None:
                completed["usage"] = {"type": "duration", "seconds": seconds}
            self.send(completed)

    async def on_commit(self, event: dict[str, Any]) -> None:
        self._commit(None, event.get("event_id"))

    async def on_clear(self, event: dict[str, Any]) -> None:
        self.buffer.clear()
        self.speaking = False
        self.send({"type": "input_audio_buffer.cleared"})

    async def on_output_clear(self, event: dict[str, Any]) -> None:
        if self.call is None:
            self.error("invalid_request_error",
                       "output_audio_buffer.clear is only supported for WebRTC and SIP calls.",
                       client_event_id=event.get("event_id"))
            return
        self.send({"type": "output_audio_buffer.cleared",
                   "response_id": self.responses.response_id})

    # ------------------------------------------------------------ control
    async def caller_says(self, text: str) -> None:
        """A caller's utterance, as the server sees it after VAD: speech started (which
        interrupts a response in progress, like real speech), stopped, committed, then a
        response when turn detection creates them.

        Returns once speech started is sent; the rest follows when the interrupted
        response has ended (waiting here could wait for a client that is not reading).
        """
        item_id = self.new_id("item")
        self.send({"type": "input_audio_buffer.speech_started",
                   "audio_start_ms": int(self.timeline_ms), "item_id": item_id})
        detection = self._turn_detection()
        task = self.responses.task
        if task is not None and (detection is None or detection.get("interrupt_response", True)):
            self.responses.cancel_reason = "turn_detected"  # it ends at its next step
            asyncio.get_running_loop().create_task(self._end_utterance(item_id, text, task))
        else:
            await self._end_utterance(item_id, text, None)

    async def _end_utterance(
        self, item_id: str, text: str, interrupted: asyncio.Task[None] | None
    ) -> None:
        if interrupted is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(interrupted)
        detection = self._turn_detection()
        self.timeline_ms += 1000
        self.send({"type": "input_audio_buffer.speech_stopped",
                   "audio_end_ms": int(self.timeline_ms), "item_id": item_id})
        self._user_turn(item_id, text, delta=False)
        if detection is not None and detection.get("create_response", True) and (
            self.responses.task is None
        ):
            self.responses.start({})
