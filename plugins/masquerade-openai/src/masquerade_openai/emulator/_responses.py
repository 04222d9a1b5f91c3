"""The emulated model's responses: ``response.create`` / ``response.cancel`` and the
event stream of one response (messages with audio or text deltas, function calls).

:class:`ResponseRunner` runs at most one response at a time per session, as the service
does (a second ``response.create`` gets ``conversation_already_has_active_response``).
What the model says comes from the script (:func:`._script.plan_response`). A response
checks for cancellation between deltas and ends with ``response.done`` either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid
from typing import TYPE_CHECKING, Any

from ._audio import AUDIO_CHUNK_B64, AUDIO_CHUNK_MS
from ._items import public_item
from ._script import Output, Rule, plan_response

if TYPE_CHECKING:
    from ._realtime import RealtimeServerSession

__all__ = ["ResponseRunner"]

_RATE_LIMITS = [
    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
    {"name": "tokens", "limit": 400000, "remaining": 395000, "reset_seconds": 0.75},
]


class _Cancelled(Exception):
    pass


class ResponseRunner:
    """The response in progress of one emulated session, if any.

    Attributes:
        task: the running response, else ``None``.
        response_id: the id of the latest response.
        cancel_reason: set to end the running response at its next step.
        produced_audio: the model has spoken (its voice can no longer change).
    """

    def __init__(self, session: RealtimeServerSession) -> None:
        self.session = session
        self.task: asyncio.Task[None] | None = None
        self.response_id: str | None = None
        self.cancel_reason: str | None = None
        self.produced_audio = False
        self.rule_for_call: dict[str, Rule] = {}
        self.in_band = True  # the running response's items join the conversation
        # On a WebRTC call the audio travels as media: no audio deltas in the events.
        call = session.call
        self.audio_events = call is None or call.kind != "webrtc"

    # ------------------------------------------------------------ client events
    async def on_create(self, event: dict[str, Any]) -> None:
        params = event.get("response") or {}
        if not isinstance(params, dict):
            raise TypeError("response must be an object")
        if self.task is not None:
            self.session.error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.response_id}. "
                "Wait until the response is finished before creating a new response.",
                client_event_id=event.get("event_id"),
            )
            return
        self.start(params)

    async def on_cancel(self, event: dict[str, Any]) -> None:
        if self.task is None:
            self.session.error("response_cancel_not_active",
                               "Cancellation failed: no active response found.",
                               client_event_id=event.get("event_id"))
            return
        wanted = event.get("response_id")
        if wanted and wanted != self.response_id:
            self.session.error("invalid_value", f"Response '{wanted}' is not in progress.",
                               param="response_id", client_event_id=event.get("event_id"))
            return
        await self.cancel("client_cancelled")

    # ------------------------------------------------------------ control
    def start(self, params: dict[str, Any]) -> None:
        self.response_id = self.session.new_id("resp")
        self.cancel_reason = None
        self.task = asyncio.get_running_loop().create_task(self._respond(self.response_id,
                                                                         params))

    async def cancel(self, reason: str) -> None:
        """End the running response (it notices at its next step) and wait for its end."""
        task = self.task
        if task is None:
            return
        self.cancel_reason = reason
        with contextlib.suppress(BaseException):
            await asyncio.shield(task)

    async def stop(self) -> None:
        """The connection closed: stop the running response without a word."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task

    async def _step(self) -> None:
        if self.cancel_reason is not None:
            raise _Cancelled
        pace = self.session.script.pace
        if pace:
            await asyncio.sleep(pace)
        else:
            await self.session.conn.drain()
        if self.cancel_reason is not None:
            raise _Cancelled

    # ------------------------------------------------------------ one response
    def _context(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """What the response sees: the conversation, or the response's own ``input``."""
        given = params.get("input")
        if not isinstance(given, list):
            return self.session.conversation.items
        context: list[dict[str, Any]] = []
        for entry in given:
            if not isinstance(entry, dict):
                continue
            if entry.get("type") == "item_reference":
                found = self.session.conversation.find(str(entry.get("id")))
                if found is not None:
                    context.append(found)
            else:
                context.append(entry)
        return context

    def _tools(self, params: dict[str, Any]) -> set[str] | None:
        """The names of the function tools this response may call (``None``: any)."""
        config = self.session.session
        choice = params.get("tool_choice", config.get("tool_choice", "auto"))
        if choice == "none":
            return set()
        if self.session.script.call_undeclared_tools:
            return None
        tools = params["tools"] if isinstance(params.get("tools"), list) else config.get("tools")
        return {str(t.get("name")) for t in tools or () if isinstance(t, dict)
                and t.get("type", "function") == "function"}

    async def _respond(self, response_id: str, params: dict[str, Any]) -> None:
        s = self.session
        config = s.session
        modalities = params.get("output_modalities") or config.get("output_modalities")
        audio = "audio" in (modalities or ["audio"])
        # conversation "none": an out-of-band response adds nothing to the conversation.
        self.in_band = params.get("conversation", "auto") != "none"
        output = config["audio"]["output"]
        response: dict[str, Any] = {
            "id": response_id, "object": "realtime.response", "status": "in_progress",
            "status_details": None, "output": [],
            "conversation_id": "conv_emulated" if self.in_band else None,
            "output_modalities": ["audio"] if audio else ["text"],
            "max_output_tokens": config.get("max_output_tokens", "inf"),
            "audio": {"output": {"format": output.get("format"), "voice": output.get("voice")}},
            "usage": None, "metadata": params.get("metadata"),
        }
        s.send({"type": "response.created", "response": dict(response)})
        s.send({"type": "rate_limits.updated", "rate_limits": _RATE_LIMITS})
        if s.call is not None and audio:
            s.send({"type": "output_audio_buffer.started", "response_id": response_id})
        outputs, rule = plan_response(s.script, self._context(params),
                                      params.get("instructions"), self.rule_for_call,
                                      self._tools(params))
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
                    words += await self._message(response_id, index, output, speak, produced)
        except _Cancelled:
            status, reason = "cancelled", self.cancel_reason
        response.update(
            status=status,
            status_details=None if reason is None else {"type": "cancelled", "reason": reason},
            output=[public_item(i) for i in produced],
            usage=_usage(words, audio),
        )
        if s.call is not None and audio:
            s.send({"type": "output_audio_buffer.stopped", "response_id": response_id})
        s.send({"type": "response.done", "response": response})
        self.task = None
        self.cancel_reason = None
        await s.conn.drain()

    async def _function_call(
        self, response_id: str, index: int, output: Output, rule: Rule | None
    ) -> dict[str, Any]:
        s = self.session
        item_id = s.new_id("item")
        call_id = f"call_{uuid.uuid4().hex[:16]}"
        if rule is not None:
            self.rule_for_call[call_id] = rule
        item: dict[str, Any] = {"id": item_id, "object": "realtime.item",
                                "type": "function_call", "status": "in_progress",
                                "call_id": call_id, "name": output.name, "arguments": ""}
        previous = s.conversation.last_id
        s.send({"type": "response.output_item.added", "response_id": response_id,
                "output_index": index, "item": public_item(item)})
        self._join(item, previous)
        arguments = output.arguments
        size = max(1, math.ceil(len(arguments) / 3))
        try:
            for start in range(0, len(arguments), size):
                await self._step()
                chunk = arguments[start : start + size]
                item["arguments"] += chunk
                s.send({"type": "response.function_call_arguments.delta",
                        "response_id": response_id, "item_id": item_id,
                        "output_index": index, "call_id": call_id, "delta": chunk})
        except _Cancelled:
            item["status"] = "incomplete"
            s.send({"type": "response.output_item.done", "response_id": response_id,
                    "output_index": index, "item": public_item(item)})
            raise
        item["status"] = "completed"
        s.send({"type": "response.function_call_arguments.done", "response_id": response_id,
                "item_id": item_id, "output_index": index, "call_id": call_id,
                "name": output.name, "arguments": arguments})
        s.send({"type": "response.output_item.done", "response_id": response_id,
                "output_index": index, "item": public_item(item)})
        self._item_done(item)
        return item

    async def _message(
        self,
        response_id: str,
        index: int,
        output: Output,
        audio: bool,
        produced: list[dict[str, Any]],
    ) -> int:
        """Stream one assistant message; returns how many words it said."""
        s = self.session
        item_id = s.new_id("item")
        item: dict[str, Any] = {"id": item_id, "object": "realtime.item", "type": "message",
                                "role": "assistant", "status": "in_progress", "content": []}
        previous = s.conversation.last_id
        s.send({"type": "response.output_item.added", "response_id": response_id,
                "output_index": index, "item": public_item(item)})
        self._join(item, previous)
        produced.append(item)
        base = {"response_id": response_id, "item_id": item_id, "output_index": index,
                "content_index": 0}
        s.send({"type": "response.content_part.added", **base,
                "part": {"type": "audio" if audio else "text",
                         "transcript" if audio else "text": ""}})
        words = output.text.split()
        if output.deltas is not None:
            deltas = output.deltas
            words = (words or ["bench"]) * max(1, deltas // 3)
        elif audio:
            deltas = max(1, math.ceil(len(words) * s.script.ms_per_word / AUDIO_CHUNK_MS))
        else:
            deltas = max(1, len(words))
        said: list[str] = []
        cancelled = False
        try:
            if output.deltas is not None and not s.script.pace:
                self._burst(base, deltas, audio, words, said)
            else:
                await self._stream(base, deltas, audio, words, said)
        except _Cancelled:
            cancelled = True
        text = "".join(said)
        if audio:
            s.send({"type": "response.output_audio.done", **base})
            s.send({"type": "response.output_audio_transcript.done", **base, "transcript": text})
            part = {"type": "output_audio", "transcript": text}
        else:
            s.send({"type": "response.output_text.done", **base, "text": text})
            part = {"type": "output_text", "text": text}
        s.send({"type": "response.content_part.done", **base,
                "part": {"type": "audio", "transcript": text} if audio
                else {"type": "text", "text": text}})
        item["content"] = [part]
        item["status"] = "incomplete" if cancelled else "completed"
        s.send({"type": "response.output_item.done", "response_id": response_id,
                "output_index": index, "item": public_item(item)})
        self._item_done(item)
        if cancelled:
            raise _Cancelled
        return len(text.split())

    def _join(self, item: dict[str, Any], previous: str | None) -> None:
        if self.in_band:
            self.session.conversation.add(item, previous)

    def _item_done(self, item: dict[str, Any]) -> None:
        if self.in_band:
            self.session.send({"type": "conversation.item.done", "item": public_item(item)})

    async def _stream(
        self, base: dict[str, Any], deltas: int, audio: bool, words: list[str], said: list[str]
    ) -> None:
        """Deltas one step at a time (paced, and checking for cancellation)."""
        s = self.session
        item_id = base["item_id"]
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
                s.send({"type": kind, **base, "delta": text})
            if audio:
                if self.audio_events:
                    s.send({"type": "response.output_audio.delta", **base,
                            "delta": AUDIO_CHUNK_B64})
                self.produced_audio = True
                audio_ms = s.conversation.audio_ms
                audio_ms[item_id] = audio_ms.get(item_id, 0) + AUDIO_CHUNK_MS

    def _burst(
        self, base: dict[str, Any], deltas: int, audio: bool, words: list[str], said: list[str]
    ) -> None:
        """Load generation: ``deltas`` deltas from a template, written without pausing
        (the real service also streams faster than real time)."""
        s = self.session
        ids = s.ids
        out: list[str] = []
        record = s.record.server_events
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
                if self.audio_events:
                    out.append(audio_event % next(ids))
                    record.append("response.output_audio.delta")
            self.produced_audio = True
            audio_ms = s.conversation.audio_ms
            audio_ms[iid] = audio_ms.get(iid, 0) + deltas * AUDIO_CHUNK_MS
        else:
            text_event = ('{"type":"response.output_text.delta","event_id":"event_%d",'
                          + head + ',"delta":%s}')
            for n in range(deltas):
                word = json.dumps(" " + words[n % len(words)])
                out.append(text_event % (next(ids), word))
                record.append("response.output_text.delta")
                said.append(json.loads(word))
        s.conn.send_many(out)


def _usage(words: int, audio: bool) -> dict[str, Any]:
    """Plausible token usage of a response that said ``words`` words."""
    out = max(1, words) * (8 if audio else 2)
    text = max(1, words) * 2
    return {
        "total_tokens": 120 + out, "input_tokens": 120, "output_tokens": out,
        "input_token_details": {"text_tokens": 100, "audio_tokens": 20, "cached_tokens": 0,
                                "image_tokens": 0},
        "output_token_details": {"text_tokens": text, "audio_tokens": out - text if audio else 0},
    }
