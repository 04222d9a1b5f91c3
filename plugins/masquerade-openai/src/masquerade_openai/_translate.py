"""Protocol translation: server events in, normalized masquerade events out.

:class:`EventTranslator` holds one table, event type -> small handler. The receive loop
(:meth:`EventTranslator.read`) parses each frame with ``json.loads``, looks its type up in
the table and calls the handler, which updates the conversation store and hands events to
the session's synchronous ``emit`` (built without validation: see :mod:`._fast`). There
is no await per event beyond the socket receive; whatever a handler queued in the outbox
is sent after the frame. Types without a handler become ``provider`` events, and a frame
that cannot be handled becomes a non-fatal ``error`` event (``malformed_event``).

Handlers for responses, audio and speech live with turn taking (:mod:`._turns`), those
for function-call arguments with the tool round trip (:mod:`._tools`); the table here
names them all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from masquerade import redact
from masquerade.events import ErrorEvent, ProviderEvent, TranscriptDelta, TranscriptDone

from ._conversation import ConversationItem, RealtimeConversation
from ._fast import builder, positional_builder, shallow_text
from ._link import RealtimeLink
from ._options import RealtimeOptions
from ._shared import EMPTY, FATAL_CODES, noop_emit
from ._tools import ToolRoundTrip
from ._transport import WebSocket
from ._turns import TurnTaking

if TYPE_CHECKING:
    from masquerade import Session

__all__ = ["EventTranslator", "Handler"]

logger = logging.getLogger("masquerade_openai")

Handler = Callable[["EventTranslator", dict[str, Any]], None]

_transcript_delta = builder(TranscriptDelta)
_assistant_delta = positional_builder(TranscriptDelta, "text", "turn", type="transcript.delta",
                                      role="assistant")
_transcript_done = builder(TranscriptDone)
_provider_event = builder(ProviderEvent)


class EventTranslator:
    """The translation of one session's server events, and its receive loop.

    Attributes:
        handlers: server event type -> handler (one table shared by every session).
        replaying: ids of items a renewal is replaying (not announced again).
    """

    # Slots: thousands of idle sessions each hold one of these.
    __slots__ = (
        "_announced", "_start_tool", "_text_item", "conversation", "emit",
        "frame", "handlers", "link", "options", "replaying", "session", "tools", "turns",
    )

    def __init__(
        self,
        options: RealtimeOptions,
        link: RealtimeLink,
        conversation: RealtimeConversation,
        turns: TurnTaking,
        tools: ToolRoundTrip,
    ) -> None:
        self.options = options
        self.link = link
        self.conversation = conversation
        self.turns = turns
        self.emit: Callable[[Any], Any] = noop_emit
        #: The masquerade session, once connected: its backpressure pauses the reader.
        self.session: Session | None = None
        # (sets from their first add)
        self.replaying: AbstractSet[str] = EMPTY
        self._announced: AbstractSet[str] = EMPTY
        self._text_item: ConversationItem | None = None  # the item text deltas go to
        self.tools = tools
        self.handlers = _HANDLERS  # emptied once the session ended
        self._start_tool = tools.start
        #: The text of the frame being handled (``None`` outside the receive loop): a
        #: provider event's payload is known to be shallow when the text is (one count
        #: in C instead of walking the payload, see :func:`._fast.shallow_text`).
        self.frame: str | bytes | None = None


    # ------------------------------------------------------------ other parts' handlers
    def _tools_on_arguments_delta(self, data: dict[str, Any]) -> None:
        self.tools.on_arguments_delta(data, shallow_text(self.frame))

    def _tools_on_arguments_done(self, data: dict[str, Any]) -> None:
        self.tools.on_arguments_done(data, shallow_text(self.frame))

    def _turns_on_audio_delta(self, data: dict[str, Any]) -> None:
        self.turns.on_audio_delta(data)

    def _turns_on_response_created(self, data: dict[str, Any]) -> None:
        self.turns.on_response_created(data)

    def _turns_on_response_done(self, data: dict[str, Any]) -> None:
        self.turns.on_response_done(data, shallow_text(self.frame))

    def _turns_on_speech_started(self, data: dict[str, Any]) -> None:
        self.turns.on_speech_started(data)

    def _turns_on_speech_stopped(self, data: dict[str, Any]) -> None:
        self.turns.on_speech_stopped(data)

    # ------------------------------------------------------------ the receive loop
    async def read(self, ws: WebSocket, *, hand_back: bool = False) -> None:
        """Handle frames from ``ws`` until it closes (raises ``ConnectionClosed``).

        With ``hand_back``, returns instead of sending what a frame's handlers queued
        (the caller flushes the outbox), so a deadline around this call can only end a
        wait for the next frame.
        """
        recv = ws.recv
        loads = json.loads
        handlers = self.handlers
        outbox = self.link.outbox
        flush = self.link.flush
        unmapped = self._unmapped
        session = self.session
        while True:
            raw = self.frame = await recv()
            data = None
            try:
                data = loads(raw)
                if type(data) is dict:
                    handler = handlers.get(data.get("type"))  # type: ignore[arg-type]
                    if handler is None:
                        unmapped(data)
                    else:
                        handler(self, data)
                else:
                    self._malformed(raw, "the frame is not a JSON object")
            except Exception as exc:
                self._handler_failed(raw, data, exc)
            if outbox:
                if hand_back:
                    return
                await flush()
            # (_pressured first: one attribute read per frame instead of a property call)
            if session is not None and session._pressured and session.under_pressure:
                await session.backpressure()  # a subscriber is max_buffer behind: stop reading

    def dispatch(self, data: Any) -> None:
        """Handle one event outside the receive loop (the handshake's events)."""
        if not isinstance(data, dict):
            self._malformed(data, "the frame is not a JSON object")
            return
        self.frame = None  # no text to vouch for the payload's depth
        try:
            handler = self.handlers.get(data.get("type"))  # type: ignore[arg-type]
            if handler is None:
                self._unmapped(data)
            else:
                handler(self, data)
        except Exception as exc:
            self._handler_failed(data, data, exc)

    def _unmapped(self, data: dict[str, Any]) -> None:
        self.emit(_provider_event({"type": "provider", "name": str(data.get("type")),
                                   "payload": data}, shallow_text(self.frame)))

    def _raw(self, data: dict[str, Any]) -> None:
        self.emit(_provider_event({"type": "provider", "name": data["type"], "payload": data},
                                  shallow_text(self.frame)))

    def _handler_failed(self, raw: Any, data: Any, exc: Exception) -> None:
        if data is None:
            self._malformed(raw, "the frame is not valid JSON")
            return
        if not isinstance(exc, KeyError | TypeError | ValueError | AttributeError):
            logger.debug("handling a server event failed", exc_info=True)
        problem = f"missing field {exc}" if isinstance(exc, KeyError) else (
            f"{type(exc).__name__}: {exc}"
        )
        self._malformed(data, problem)

    def _malformed(self, raw: Any, problem: str) -> None:
        kind = raw.get("type") if isinstance(raw, dict) else None
        what = f"a {kind!r} event" if kind else "a server frame"
        if isinstance(raw, bytes | str):
            raw = raw[:2000]
        self.emit(
            ErrorEvent(
                code="malformed_event",
                message=redact(f"{what} could not be handled ({problem}); it was skipped"),
                fatal=False,
                raw=raw,
            )
        )

    # ------------------------------------------------------------ session
    def _on_session_created(self, data: dict[str, Any]) -> None:
        self.link.note_session(data["session"])
        self._raw(data)

    def _on_session_updated(self, data: dict[str, Any]) -> None:
        session = data["session"]
        if isinstance(session, dict):
            self.link.session_config = session
        self._raw(data)

    def _on_error(self, data: dict[str, Any]) -> None:
        error = data["error"]
        if not isinstance(error, dict):
            raise TypeError("'error' is not an object")
        code = error.get("code")
        message = str(error.get("message") or "the Realtime server reported an error")
        self.turns.on_error(code, error.get("event_id"))
        expired = code == "session_expired" or "maximum duration" in message
        if expired:
            self.link.expired = True
        fatal = code in FATAL_CODES or (expired and not self.options.renewal.enabled)
        self.emit(
            ErrorEvent(
                code=str(code or error.get("type") or "error"),
                message=redact(message),
                fatal=fatal,
                raw=data,
            )
        )

    # ------------------------------------------------------------ conversation items
    def _on_item_added(self, data: dict[str, Any]) -> None:
        stored = self.conversation.upsert(data["item"])
        if stored is not None and stored.status != "in_progress":  # (completed)
            self._announce_text_item(stored)
        self._raw(data)

    def _on_item_done(self, data: dict[str, Any]) -> None:
        stored = self.conversation.upsert(data["item"])
        if stored is not None:
            self.conversation.mark_completed(stored)
            self._announce_text_item(stored)
            replaying = self.replaying
            if isinstance(replaying, set):
                replaying.discard(stored.id)
        self._raw(data)

    def _announce_text_item(self, item: ConversationItem) -> None:
        # User/system text typed by someone else (our own is announced when sent);
        # replayed items were announced in their first session.
        if (
            item.type == "message"
            and item.role in ("user", "system")
            and not item.id.startswith("item_msq_")
            and item.id not in self.replaying
            and item.id not in self._announced
            and item.text
        ):
            announced = self._announced
            if not isinstance(announced, set):
                announced = self._announced = set()
            announced.add(item.id)  # once: conversation.item.done follows .added
            self.emit(_transcript_done({"type": "transcript.done", "role": item.role,
                                        "text": item.text, "turn": item.id}))

    def _on_item_truncated(self, data: dict[str, Any]) -> None:
        self.conversation.truncate(data["item_id"], int(data.get("audio_end_ms") or 0))
        self._raw(data)

    def _on_item_deleted(self, data: dict[str, Any]) -> None:
        self.conversation.delete(data["item_id"])
        self._raw(data)

    def _on_output_item_added(self, data: dict[str, Any]) -> None:
        item = self.conversation.upsert(data["item"])
        if item is not None and item.response_id is None:
            item.response_id = data.get("response_id")
        self._raw(data)

    def _on_output_item_done(self, data: dict[str, Any]) -> None:
        payload = data["item"]
        item = self.conversation.upsert(payload)
        if item is not None:
            self.conversation.mark_completed(item)
        if (
            payload.get("type") == "function_call"
            and payload.get("status") in (None, "completed")
            and data.get("response_id") not in self.turns.abandoned
        ):
            self._start_tool(payload)
        self._raw(data)

    # ------------------------------------------------------------ transcripts
    def _on_input_transcript_delta(self, data: dict[str, Any]) -> None:
        delta = data["delta"]
        item_id = data["item_id"]
        self.conversation.ensure(item_id, "message", "user").add_transcript(delta)
        self.emit(_transcript_delta({"type": "transcript.delta", "role": "user",
                                     "text": delta, "turn": item_id}))

    def _on_input_transcript(self, data: dict[str, Any]) -> None:
        transcript = data["transcript"]
        item_id = data["item_id"]
        item = self.conversation.ensure(item_id, "message", "user")
        item.transcript = transcript
        self.emit(_transcript_done({"type": "transcript.done", "role": "user",
                                    "text": transcript, "turn": item_id}))

    def _on_transcription_failed(self, data: dict[str, Any]) -> None:
        found = data.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        self.emit(
            ErrorEvent(
                code="transcription_failed",
                message=f"input transcription failed for item {data.get('item_id')}: "
                f"{error.get('message') or 'no reason given'}",
                fatal=False,
                raw=data,
            )
        )

    # The two per-frame text handlers are written out in full (no shared helper, no
    # keyword call): spoken transcripts and text output are the same normalized event,
    # only the conversation item's field differs.
    def _on_transcript_delta(self, data: dict[str, Any]) -> None:
        if data.get("response_id") in self.turns.abandoned:
            return
        delta = data["delta"]
        item_id = data.get("item_id")
        item = self._text_item
        if item is None or item.id != item_id:
            item = self._text_item = self._assistant_item(item_id)
        if item is not None:
            item._transcript.append(delta)
        self.emit(_assistant_delta(delta, item_id))

    def _on_text_delta(self, data: dict[str, Any]) -> None:
        delta = data["delta"]
        item_id = data.get("item_id")
        item = self._text_item
        if item is None or item.id != item_id:
            item = self._text_item = self._assistant_item(item_id)
        if item is not None:
            item._text.append(delta)
        self.emit(_assistant_delta(delta, item_id))

    def _assistant_item(self, item_id: Any) -> ConversationItem | None:
        return self.conversation.ensure(item_id, "message", "assistant") if item_id else None

    def _on_transcript_done(self, data: dict[str, Any]) -> None:
        self._assistant_done(data.get("item_id"), data["transcript"], transcript=True)

    def _on_text_done(self, data: dict[str, Any]) -> None:
        self._assistant_done(data.get("item_id"), data["text"], transcript=False)

    def _assistant_done(self, item_id: str | None, text: str, *, transcript: bool) -> None:
        if item_id:
            item = self.conversation.ensure(item_id, "message", "assistant")
            if transcript:
                item.transcript = text
            else:
                item.text = text
        self.emit(_transcript_done({"type": "transcript.done", "role": "assistant",
                                    "text": text, "turn": item_id}))


#: Server event type -> handler; one table for every session (no per-session copy).
_HANDLERS: dict[str, Handler] = {
    "session.created": EventTranslator._on_session_created,
    "session.updated": EventTranslator._on_session_updated,
    "error": EventTranslator._on_error,
    "conversation.item.added": EventTranslator._on_item_added,
    "conversation.item.created": EventTranslator._on_item_added,  # beta
    "conversation.item.done": EventTranslator._on_item_done,
    "conversation.item.retrieved": EventTranslator._on_item_added,
    "conversation.item.truncated": EventTranslator._on_item_truncated,
    "conversation.item.deleted": EventTranslator._on_item_deleted,
    "conversation.item.input_audio_transcription.delta": EventTranslator._on_input_transcript_delta,
    "conversation.item.input_audio_transcription.completed": EventTranslator._on_input_transcript,
    "conversation.item.input_audio_transcription.failed": EventTranslator._on_transcription_failed,
    "input_audio_buffer.speech_started": EventTranslator._turns_on_speech_started,
    "input_audio_buffer.speech_stopped": EventTranslator._turns_on_speech_stopped,
    "response.created": EventTranslator._turns_on_response_created,
    "response.done": EventTranslator._turns_on_response_done,
    "response.output_item.added": EventTranslator._on_output_item_added,
    "response.output_item.done": EventTranslator._on_output_item_done,
    "response.output_audio.delta": EventTranslator._turns_on_audio_delta,
    "response.audio.delta": EventTranslator._turns_on_audio_delta,  # beta
    "response.output_audio_transcript.delta": EventTranslator._on_transcript_delta,
    "response.audio_transcript.delta": EventTranslator._on_transcript_delta,  # beta
    "response.output_audio_transcript.done": EventTranslator._on_transcript_done,
    "response.audio_transcript.done": EventTranslator._on_transcript_done,  # beta
    "response.output_text.delta": EventTranslator._on_text_delta,
    "response.text.delta": EventTranslator._on_text_delta,  # beta
    "response.output_text.done": EventTranslator._on_text_done,
    "response.text.done": EventTranslator._on_text_done,  # beta
    "response.function_call_arguments.delta": EventTranslator._tools_on_arguments_delta,
    "response.function_call_arguments.done": EventTranslator._tools_on_arguments_done,
}
