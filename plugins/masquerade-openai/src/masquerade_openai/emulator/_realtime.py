"""One emulated GA Realtime session: the server side of one websocket.

It answers the 11 GA client events the way the service does (event names, field names,
error codes), keeps the conversation, emulates server VAD on appended audio (any non-zero
sample is speech), and runs the scripted model for each response. Everything runs on the
emulator's asyncio loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._script import EmulatorScript, Output, Rule, plan_response
from ._wire import WsConnection

if TYPE_CHECKING:
    from . import _CallRecord

__all__ = ["ConnectionRecord", "RealtimeServerSession", "AUDIO_CHUNK_B64"]

# 100 ms of 24 kHz PCM16 (4800 bytes), noise-like so it is as large on the wire as speech.
_AUDIO_CHUNK = bytes((i * 7919 + (i >> 3) * 104729) % 251 for i in range(4800))
AUDIO_CHUNK_B64 = base64.b64encode(_AUDIO_CHUNK).decode()
_AUDIO_CHUNK_MS = 100

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


class _Cancelled(Exception):
    pass


class RealtimeServerSession:
    """The emulated server session behind one websocket."""

    def __init__(
        self,
        connection: WsConnection,
        record: ConnectionRecord,
        script: EmulatorScript,
        *,
        model: str,
        call: _CallRecord | None = None,
    ) -> None:
        self.conn = connection
        self.record = record
        self.script = script
        self.call = call
        self.ids = itertools.count(1)
        self.session_id = f"sess_{uuid.uuid4().hex[:20]}"
        record.session_id = self.session_id
        self.session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.session_id,
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "You are a helpful assistant.",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": int(time.time() + script.max_session_s),
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
        if call is not None:
            # A SIP call speaks G.711 and starts from the config it was accepted with.
            self.session["audio"]["input"]["format"] = {"type": "audio/pcmu"}
            self.session["audio"]["output"]["format"] = {"type": "audio/pcmu"}
            self._merge_session(call.accept_config or {})
        self.items: list[dict[str, Any]] = []
        self.item_audio_ms: dict[str, int] = {}
        self.produced_audio = False
        self.rule_for_call: dict[str, Rule] = {}
        self.response_task: asyncio.Task[None] | None = None
        self.response_id: str | None = None
        self.cancel_reason: str | None = None
        # input audio / VAD
        self.buffer = bytearray()
        self.buffer_start_ms = 0
        self.timeline_ms = 0.0
        self.speaking = False
        self.silence_ms = 0.0
        self.speech_item: str | None = None
        self.transcripts = list(script.transcripts)

    # ------------------------------------------------------------ sending
    def _id(self, prefix: str) -> str:
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
            self.record.closed = True
            self.record.close_code = self.conn.close_code
            if self.response_task is not None:
                self.response_task.cancel()
                with contextlib.suppress(BaseException):
                    await self.response_task

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
        if kind not in _CLIENT_EVENTS:
            self.error(
                "invalid_value",
                f"Invalid value: {kind!r}. Supported values are: {', '.join(_CLIENT_EVENTS)}.",
                param="type",
                client_event_id=eid,
            )
            return
        handler = getattr(self, "on_" + str(kind).replace(".", "_"))
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
    def _merge_session(self, update: Mapping[str, Any]) -> None:
        for key, value in update.items():
            if key == "audio" and isinstance(value, Mapping):
                for side in ("input", "output"):
                    if isinstance(value.get(side), Mapping):
                        self.session["audio"][side].update(value[side])
            elif key not in ("id", "object", "expires_at"):
                self.session[key] = value

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
        if voice is not None and self.produced_audio and voice != (
            self.session["audio"]["output"].get("voice")
        ):
            self.error("cannot_update_voice",
                       "Cannot update a conversation's voice if assistant audio is present.",
                       param="session.audio.output.voice", client_event_id=eid)
            return
        self._merge_session(update)
        self.record.session = json.loads(json.dumps(self.session))
        self.send({"type": "session.updated", "session": self.session})

    # ------------------------------------------------------------ input audio
    def _bytes_per_ms(self) -> float:
        fmt = self.session["audio"]["input"].get("format") or {}
        return 48.0 if fmt.get("type", "audio/pcm") == "audio/pcm" else 8.0

    def _turn_detection(self) -> dict[str, Any] | None:
        detection = self.session["audio"]["input"].get("turn_detection")
        return detection if isinstance(detection, dict) else None

    async def on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
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
        if speech and not self.speaking:
            self.speaking = True
            self.silence_ms = 0.0
            self.speech_item = self._id("item")
            self.send({"type": "input_audio_buffer.speech_started",
                       "audio_start_ms": int(self.timeline_ms), "item_id": self.speech_item})
            if self.response_task is not None and detection.get("interrupt_response", True):
                await self._cancel_response("turn_detected")
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
                if detection.get("create_response", True) and self.response_task is None:
                    self._start_response({}, client_event_id=None)
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
        item_id = item_id or self._id("item")
        previous = self.items[-1]["id"] if self.items else None
        self.send({"type": "input_audio_buffer.committed", "previous_item_id": previous,
                   "item_id": item_id})
        heard = self.transcripts.pop(0) if self.transcripts else "(inaudible)"
        item: dict[str, Any] = {
            "id": item_id, "object": "realtime.item", "type": "message", "role": "user",
            "status": "completed", "content": [{"type": "input_audio", "transcript": None}],
        }
        self.buffer.clear()
        self._add_item(item, previous)
        # The model hears the audio whether or not transcription is on.
        item["content"][0]["transcript"] = heard
        if self.session["audio"]["input"].get("transcription"):
            self.send({"type": "conversation.item.input_audio_transcription.delta",
                       "item_id": item_id, "content_index": 0, "delta": heard})
            self.send({"type": "conversation.item.input_audio_transcription.completed",
                       "item_id": item_id, "content_index": 0, "transcript": heard,
                       "usage": {"type": "duration", "seconds": round(ms / 1000, 3)}})
        return True

    async def on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        self._commit(None, event.get("event_id"))

    async def on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        self.buffer.clear()
        self.speaking = False
        self.send({"type": "input_audio_buffer.cleared"})

    async def on_output_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        if self.call is None:
            self.error("invalid_request_error",
                       "output_audio_buffer.clear is only supported for WebRTC and SIP calls.",
                       client_event_id=event.get("event_id"))
            return
        self.send({"type": "output_audio_buffer.cleared", "response_id": self.response_id})

    # ------------------------------------------------------------ conversation
    def _find(self, item_id: str) -> dict[str, Any] | None:
        for item in self.items:
            if item["id"] == item_id:
                return item
        return None

    def _add_item(self, item: dict[str, Any], previous: str | None) -> None:
        if previous is None or not self.items:
            index = len(self.items) if previous is None else 0
        elif previous == "root":
            index = 0
        else:
            found = self._find(previous)
            index = self.items.index(found) + 1 if found is not None else len(self.items)
        self.items.insert(index, item)
        self.record.items = self.items
        self.send({"type": "conversation.item.added", "previous_item_id": previous,
                   "item": _public(item)})
        if item.get("status") != "in_progress":
            self.send({"type": "conversation.item.done", "previous_item_id": previous,
                       "item": _public(item)})

    async def on_conversation_item_create(self, event: dict[str, Any]) -> None:
        item = event["item"]
        eid = event.get("event_id")
        if not isinstance(item, dict):
            raise TypeError("item must be an object")
        kind = item.get("type")
        if kind not in ("message", "function_call", "function_call_output"):
            self.error("invalid_value", f"Invalid value: {kind!r} for 'item.type'.",
                       param="item.type", client_event_id=eid)
            return
        item = dict(item)
        item.setdefault("id", self._id("item"))
        if self._find(item["id"]) is not None:
            self.error("duplicate_item_id", f"Item with id '{item['id']}' already exists.",
                       param="item.id", client_event_id=eid)
            return
        if kind == "message":
            role = item.get("role")
            allowed = {"user": {"input_text", "input_audio", "input_image"},
                       "system": {"input_text"},
                       "assistant": {"output_text", "output_audio"}}.get(str(role))
            if allowed is None:
                self.error("invalid_value", f"Invalid value: {role!r} for 'item.role'.",
                           param="item.role", client_event_id=eid)
                return
            for part in item.get("content") or ():
                if not isinstance(part, dict) or part.get("type") not in allowed:
                    self.error("invalid_value",
                               f"Invalid content type for a {role} message: "
                               f"{part.get('type') if isinstance(part, dict) else part!r}.",
                               param="item.content", client_event_id=eid)
                    return
        elif kind == "function_call_output":
            call_id = item["call_id"]
            if not any(i.get("type") == "function_call" and i.get("call_id") == call_id
                       for i in self.items):
                self.error("invalid_tool_call_id",
                           f"Tool call ID '{call_id}' not found in conversation.",
                           param="item.call_id", client_event_id=eid)
                return
            if not isinstance(item.get("output"), str):
                self.error("invalid_value", "'item.output' must be a string.",
                           param="item.output", client_event_id=eid)
                return
        elif kind == "function_call":
            item["call_id"], item["name"]
        item["object"] = "realtime.item"
        item["status"] = "completed"
        previous = event.get("previous_item_id")
        if previous not in (None, "root") and self._find(previous) is None:
            self.error("previous_item_not_found",
                       f"Previous item with id '{previous}' not found.",
                       param="previous_item_id", client_event_id=eid)
            return
        if previous is None and self.items:
            previous = self.items[-1]["id"]
        self._add_item(item, previous)

    async def on_conversation_item_retrieve(self, event: dict[str, Any]) -> None:
        item = self._find(event["item_id"])
        if item is None:
            self.error("item_not_found", f"Item with id '{event['item_id']}' not found.",
                       param="item_id", client_event_id=event.get("event_id"))
            return
        full = _public(item)
        ms = self.item_audio_ms.get(item["id"])
        if ms:
            for part in full.get("content") or ():
                if part.get("type") == "output_audio":
                    part["audio"] = base64.b64encode(_AUDIO_CHUNK * math.ceil(ms / 100)).decode()
        self.send({"type": "conversation.item.retrieved", "item": full})

    async def on_conversation_item_delete(self, event: dict[str, Any]) -> None:
        item = self._find(event["item_id"])
        if item is None:
            self.error("item_not_found", f"Item with id '{event['item_id']}' not found.",
                       param="item_id", client_event_id=event.get("event_id"))
            return
        self.items.remove(item)
        self.send({"type": "conversation.item.deleted", "item_id": item["id"]})

    async def on_conversation_item_truncate(self, event: dict[str, Any]) -> None:
        item_id = event["item_id"]
        end = event["audio_end_ms"]
        eid = event.get("event_id")
        item = self._find(item_id)
        if item is None:
            self.error("item_not_found", f"Item with id '{item_id}' not found.",
                       param="item_id", client_event_id=eid)
            return
        audio_ms = self.item_audio_ms.get(item_id, 0)
        if item.get("role") != "assistant" or audio_ms == 0:
            self.error("unsupported_content_type",
                       "Only model output audio messages can be truncated.",
                       param="item_id", client_event_id=eid)
            return
        if not isinstance(end, int) or end < 0 or end > audio_ms:
            self.error("invalid_value",
                       f"Audio content of {audio_ms}ms is already shorter than {end}ms.",
                       param="audio_end_ms", client_event_id=eid)
            return
        self.item_audio_ms[item_id] = end
        for part in item.get("content") or ():
            if part.get("type") == "output_audio":
                part["transcript"] = ""  # the unheard words leave the context
        item["truncated_ms"] = end
        self.send({"type": "conversation.item.truncated", "item_id": item_id,
                   "content_index": event.get("content_index", 0), "audio_end_ms": end})

    # ------------------------------------------------------------ responses
    async def on_response_create(self, event: dict[str, Any]) -> None:
        params = event.get("response") or {}
        if not isinstance(params, dict):
            raise TypeError("response must be an object")
        if self.response_task is not None:
            self.error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.response_id}. "
                "Wait until the response is finished before creating a new response.",
                client_event_id=event.get("event_id"),
            )
            return
        self._start_response(params, client_event_id=event.get("event_id"))

    async def on_response_cancel(self, event: dict[str, Any]) -> None:
        if self.response_task is None:
            self.error("response_cancel_not_active",
                       "Cancellation failed: no active response found.",
                       client_event_id=event.get("event_id"))
            return
        wanted = event.get("response_id")
        if wanted and wanted != self.response_id:
            self.error("invalid_value", f"Response '{wanted}' is not in progress.",
                       param="response_id", client_event_id=event.get("event_id"))
            return
        await self._cancel_response("client_cancelled")

    async def _cancel_response(self, reason: str) -> None:
        task = self.response_task
        if task is None:
            return
        self.cancel_reason = reason
        # The response task notices at its next step and ends with response.done.
        with contextlib.suppress(BaseException):
            await asyncio.shield(task)

    def _start_response(self, params: dict[str, Any], client_event_id: Any) -> None:
        self.response_id = self._id("resp")
        self.cancel_reason = None
        self.response_task = asyncio.get_running_loop().create_task(
            self._respond(self.response_id, params)
        )

    async def _step(self) -> None:
        if self.cancel_reason is not None:
            raise _Cancelled
        pace = self.script.pace
        if pace:
            await asyncio.sleep(pace)
        else:
            await self.conn.drain()
        if self.cancel_reason is not None:
            raise _Cancelled

    async def _respond(self, response_id: str, params: dict[str, Any]) -> None:
        modalities = params.get("output_modalities") or self.session.get("output_modalities")
        audio = "audio" in (modalities or ["audio"])
        response: dict[str, Any] = {
            "id": response_id, "object": "realtime.response", "status": "in_progress",
            "status_details": None, "output": [], "conversation_id": "conv_emulated",
            "output_modalities": ["audio"] if audio else ["text"],
            "max_output_tokens": self.session.get("max_output_tokens", "inf"),
            "audio": {"output": self.session["audio"]["output"]}, "usage": None,
            "metadata": params.get("metadata"),
        }
        self.send({"type": "response.created", "response": dict(response)})
        self.send({"type": "rate_limits.updated", "rate_limits": [
            {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 400000, "remaining": 395000, "reset_seconds": 0.75},
        ]})
        if self.call is not None and audio:
            self.send({"type": "output_audio_buffer.started", "response_id": response_id})
        outputs, rule = plan_response(self.script, self.items, params.get("instructions"),
                                      self.rule_for_call)
        produced: list[dict[str, Any]] = []
        status, reason = "completed", None
        words = 0
        try:
            for index, output in enumerate(outputs):
                if output.kind == "function_call":
                    produced.append(await self._function_call(response_id, index, output, rule))
                else:
                    # Load generation picks its own modality ("bench audio N").
                    speak = output.text == "audio" if output.deltas is not None else audio
                    _item, spoken = await self._message(response_id, index, output, speak,
                                                        produced)
                    words += spoken
        except _Cancelled:
            status, reason = "cancelled", self.cancel_reason
        usage_out = max(1, words) * (8 if audio else 2)
        response.update(
            status=status,
            status_details=None if reason is None else {"type": "cancelled", "reason": reason},
            output=[_public(i) for i in produced],
            usage={
                "total_tokens": 120 + usage_out, "input_tokens": 120,
                "output_tokens": usage_out,
                "input_token_details": {"text_tokens": 100, "audio_tokens": 20,
                                        "cached_tokens": 0, "image_tokens": 0},
                "output_token_details": {"text_tokens": max(1, words) * 2,
                                         "audio_tokens": usage_out - max(1, words) * 2
                                         if audio else 0},
            },
        )
        if self.call is not None and audio:
            self.send({"type": "output_audio_buffer.stopped", "response_id": response_id})
        self.send({"type": "response.done", "response": response})
        self.response_task = None
        self.cancel_reason = None
        await self.conn.drain()

    async def _function_call(
        self, response_id: str, index: int, output: Output, rule: Rule | None
    ) -> dict[str, Any]:
        item_id = self._id("item")
        call_id = f"call_{uuid.uuid4().hex[:16]}"
        if rule is not None:
            self.rule_for_call[call_id] = rule
        item: dict[str, Any] = {"id": item_id, "object": "realtime.item",
                                "type": "function_call", "status": "in_progress",
                                "call_id": call_id, "name": output.name, "arguments": ""}
        previous = self.items[-1]["id"] if self.items else None
        self.send({"type": "response.output_item.added", "response_id": response_id,
                   "output_index": index, "item": _public(item)})
        self._add_item(item, previous)
        arguments = output.arguments
        size = max(1, math.ceil(len(arguments) / 3))
        try:
            for start in range(0, len(arguments), size):
                await self._step()
                chunk = arguments[start : start + size]
                item["arguments"] += chunk
                self.send({"type": "response.function_call_arguments.delta",
                           "response_id": response_id, "item_id": item_id,
                           "output_index": index, "call_id": call_id, "delta": chunk})
        except _Cancelled:
            item["status"] = "incomplete"
            self.send({"type": "response.output_item.done", "response_id": response_id,
                       "output_index": index, "item": _public(item)})
            raise
        item["status"] = "completed"
        self.send({"type": "response.function_call_arguments.done", "response_id": response_id,
                   "item_id": item_id, "output_index": index, "call_id": call_id,
                   "name": output.name, "arguments": arguments})
        self.send({"type": "response.output_item.done", "response_id": response_id,
                   "output_index": index, "item": _public(item)})
        self.send({"type": "conversation.item.done", "item": _public(item)})
        return item

    async def _message(
        self,
        response_id: str,
        index: int,
        output: Output,
        audio: bool,
        produced: list[dict[str, Any]],
    ) -> tuple[dict[str, Any], int]:
        item_id = self._id("item")
        item: dict[str, Any] = {"id": item_id, "object": "realtime.item", "type": "message",
                                "role": "assistant", "status": "in_progress", "content": []}
        previous = self.items[-1]["id"] if self.items else None
        self.send({"type": "response.output_item.added", "response_id": response_id,
                   "output_index": index, "item": _public(item)})
        self._add_item(item, previous)
        produced.append(item)
        base = {"response_id": response_id, "item_id": item_id, "output_index": index,
                "content_index": 0}
        self.send({"type": "response.content_part.added", **base,
                   "part": {"type": "audio" if audio else "text",
                            "transcript" if audio else "text": ""}})
        words = output.text.split()
        if output.deltas is not None:
            deltas = output.deltas
            words = (words or ["bench"]) * max(1, deltas // 3)
        elif audio:
            deltas = max(1, math.ceil(len(words) * self.script.ms_per_word / _AUDIO_CHUNK_MS))
        else:
            deltas = max(1, len(words))
        said: list[str] = []
        cancelled = False
        fast = output.deltas is not None and not self.script.pace
        try:
            if fast:
                self._burst(base, deltas, audio, words, said)
            else:
                per_delta = len(words) / deltas
                for n in range(deltas):
                    await self._step()
                    start, stop = round(n * per_delta), round((n + 1) * per_delta)
                    chunk = " ".join(words[start:stop])
                    if chunk:
                        text = chunk if not said else " " + chunk
                        said.append(text)
                        kind = ("response.output_audio_transcript.delta" if audio
                                else "response.output_text.delta")
                        self.send({"type": kind, **base, "delta": text})
                    if audio:
                        self.send({"type": "response.output_audio.delta", **base,
                                   "delta": AUDIO_CHUNK_B64})
                        self.produced_audio = True
                        self.item_audio_ms[item_id] = (
                            self.item_audio_ms.get(item_id, 0) + _AUDIO_CHUNK_MS
                        )
        except _Cancelled:
            cancelled = True
        text = "".join(said)
        if audio:
            self.send({"type": "response.output_audio.done", **base})
            self.send({"type": "response.output_audio_transcript.done", **base,
                       "transcript": text})
            part = {"type": "output_audio", "transcript": text}
        else:
            self.send({"type": "response.output_text.done", **base, "text": text})
            part = {"type": "output_text", "text": text}
        self.send({"type": "response.content_part.done", **base,
                   "part": {"type": "audio", "transcript": text} if audio
                   else {"type": "text", "text": text}})
        item["content"] = [part]
        item["status"] = "incomplete" if cancelled else "completed"
        self.send({"type": "response.output_item.done", "response_id": response_id,
                   "output_index": index, "item": _public(item)})
        self.send({"type": "conversation.item.done", "item": _public(item)})
        if cancelled:
            raise _Cancelled
        return item, len(text.split())

    def _burst(
        self, base: dict[str, Any], deltas: int, audio: bool, words: list[str], said: list[str]
    ) -> None:
        """Load generation: ``deltas`` deltas from a template, written without pausing
        (the real service also streams faster than real time)."""
        ids = self.ids
        out: list[str] = []
        record = self.record.server_events
        rid, iid = base["response_id"], base["item_id"]
        head = f'"response_id":"{rid}","item_id":"{iid}","output_index":0,"content_index":0'
        if audio:
            audio_event = ('{"type":"response.output_audio.delta","event_id":"event_%d",'
                           + head + ',"delta":"' + AUDIO_CHUNK_B64 + '"}')
            text_event = ('{"type":"response.output_audio_transcript.delta",'
                          '"event_id":"event_%d",' + head + ',"delta":%s}')
            for n in range(deltas):
                if n % 3 == 0:  # one transcript delta per 300 ms of audio
                    word = json.dumps(" " + words[n // 3 % len(words)])
                    out.append(text_event % (next(ids), word))
                    record.append("response.output_audio_transcript.delta")
                    said.append(json.loads(word))
                out.append(audio_event % next(ids))
                record.append("response.output_audio.delta")
            self.produced_audio = True
            self.item_audio_ms[iid] = self.item_audio_ms.get(iid, 0) + deltas * _AUDIO_CHUNK_MS
        else:
            text_event = ('{"type":"response.output_text.delta","event_id":"event_%d",'
                          + head + ',"delta":%s}')
            for n in range(deltas):
                word = json.dumps(" " + words[n % len(words)])
                out.append(text_event % (next(ids), word))
                record.append("response.output_text.delta")
                said.append(json.loads(word))
        self.conn.send_many(out)

    # ------------------------------------------------------------ control
    async def caller_says(self, text: str) -> None:
        """A caller's utterance, as the server sees it after VAD: speech started (which
        interrupts a response in progress, like real speech), stopped, committed, then a
        response when turn detection creates them.

        Returns once speech started is sent; the rest follows when the interrupted
        response has ended (waiting here could wait for a client that is not reading).
        """
        item_id = self._id("item")
        self.send({"type": "input_audio_buffer.speech_started",
                   "audio_start_ms": int(self.timeline_ms), "item_id": item_id})
        detection = self._turn_detection()
        task = self.response_task
        if task is not None and (detection is None or detection.get("interrupt_response", True)):
            self.cancel_reason = "turn_detected"  # the response ends at its next step
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
        previous = self.items[-1]["id"] if self.items else None
        self.timeline_ms += 1000
        self.send({"type": "input_audio_buffer.speech_stopped",
                   "audio_end_ms": int(self.timeline_ms), "item_id": item_id})
        self.send({"type": "input_audio_buffer.committed", "previous_item_id": previous,
                   "item_id": item_id})
        item: dict[str, Any] = {
            "id": item_id, "object": "realtime.item", "type": "message", "role": "user",
            "status": "completed", "content": [{"type": "input_audio", "transcript": None}],
        }
        self._add_item(item, previous)
        item["content"][0]["transcript"] = text
        if self.session["audio"]["input"].get("transcription"):
            self.send({"type": "conversation.item.input_audio_transcription.completed",
                       "item_id": item_id, "content_index": 0, "transcript": text})
        if detection is not None and detection.get("create_response", True) and (
            self.response_task is None
        ):
            self._start_response({}, client_event_id=None)

def _public(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item as the server shows it (GA omits audio bytes from item events)."""
    out = {k: v for k, v in item.items() if k != "truncated_ms"}
    if "content" in out:
        out["content"] = [dict(part) for part in out["content"]]
    return out
