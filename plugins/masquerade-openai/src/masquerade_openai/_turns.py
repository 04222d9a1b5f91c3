"""Turn taking and barge-in: which response is active, what to ask for next, what was heard.

:class:`TurnTaking` keeps the response sequence of one session. ``response.create``
requests wait in a queue and go out one at a time, only when no response is active, so the
server never answers ``conversation_already_has_active_response`` (and when it does,
because server VAD started a response we had not seen yet, the request is kept and sent
after that response). After tool outputs, one follow-up request (:data:`AUTO`) asks the
model to go on once every tool of the turn has answered.

Barge-in: when the user starts speaking over the model, the active response is cancelled
(unless the server does that itself), its remaining output is dropped, and the assistant
audio item is truncated at the playback position, so the model's context holds only what
the user heard. Playback is assumed to run in real time from the first audio delta, unless
the application reports it (:meth:`TurnTaking.report_playback`).

Handlers queue what they need to send in the link's outbox; the receive loop sends it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from masquerade.events import (
    AudioDelta,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    SpeechStopped,
)

from ._conversation import ConversationItem, RealtimeConversation
from ._fast import builder, positional_builder
from ._options import RealtimeOptions
from ._shared import EMPTY, event_id, noop_emit

__all__ = ["TurnTaking", "AUTO"]

#: Marker in the response queue: the follow-up request after tool outputs.
AUTO: dict[str, Any] = {}

_audio_delta = positional_builder(AudioDelta, "data", "response_id", "item_id",
                                  type="audio.delta")
_response_started = builder(ResponseStarted)
_response_done = builder(ResponseDone)


class TurnTaking:
    """Response sequencing and barge-in for one session.

    Attributes:
        active: the id of the response in progress (``"(unseen)"`` or ``"(unnamed)"``
            when the server did not name it), else ``None``.
        pending: the event id of a ``response.create`` sent and not yet started.
        queue: requested responses waiting for their turn (``AUTO``: after tool outputs).
        tools_running: tool calls whose output has not been sent yet.
        abandoned: responses whose output is dropped (barged in on or cancelled).
        barged: the subset cancelled because the user spoke.
        start_tool: called with each function call a ``response.done`` carries.
    """

    # Slots: thousands of idle sessions each hold one of these.
    __slots__ = (
        "abandoned", "active", "audio_item", "audio_started", "barged", "bytes_per_ms",
        "conversation", "emit", "last_create", "last_create_id", "outbox", "pending",
        "played", "queue", "server_interrupts", "start_tool", "store_audio",
        "tools_running",
    )

    def __init__(
        self,
        options: RealtimeOptions,
        conversation: RealtimeConversation,
        outbox: list[dict[str, Any]],
    ) -> None:
        self.conversation = conversation
        self.outbox = outbox
        self.emit: Callable[[Any], Any] = noop_emit
        self.start_tool: Callable[[Mapping[str, Any]], None] = _no_tool
        self.active: str | None = None
        self.pending: str | None = None
        self.last_create: dict[str, Any] | None = None
        self.last_create_id: str | None = None
        self.queue: list[dict[str, Any]] = []  # a few entries at most: no deque block
        self.tools_running = 0
        self.bytes_per_ms = options.output_bytes_per_ms()
        self.server_interrupts = options.server_interrupts
        self.store_audio = options.store_audio
        self.audio_item: ConversationItem | None = None
        self.audio_started = 0.0
        self.played: dict[str, int] = {}
        self.abandoned: AbstractSet[str] = EMPTY  # a set from the first add
        self.barged: AbstractSet[str] = EMPTY  # a set from the first add

    # ------------------------------------------------------------ state
    @property
    def response_active(self) -> bool:
        """Whether a response is in progress (or requested and not yet started)."""
        return self.active is not None or self.pending is not None

    def mid_turn(self) -> bool:
        """A response or a tool call is in progress."""
        return self.active is not None or self.tools_running > 0 or bool(self.pending)

    def playback_ms(self, item: ConversationItem) -> int:
        reported = self.played.get(item.id)
        if reported is not None:
            return reported
        return int((time.monotonic() - self.audio_started) * 1000)

    def playing(self) -> bool:
        """Assistant audio received is still being played (by the real-time estimate)."""
        item = self.audio_item
        if item is None or item.truncated_ms is not None:
            return False
        return self.playback_ms(item) < item.audio_ms(self.bytes_per_ms)

    def report_playback(self, audio_ms: int, item_id: str | None = None) -> None:
        target = item_id or (self.audio_item.id if self.audio_item else None)
        if target is not None:
            self.played[target] = max(0, int(audio_ms))

    # ------------------------------------------------------------ requests
    def request(self, response: dict[str, Any]) -> None:
        """Queue a ``response.create`` (sent by :meth:`pump` when its turn comes)."""
        self.queue.append(response)
        self.pump()

    def follow_up(self) -> None:
        """Ask the model to go on once every tool output of this turn is sent."""
        if not any(entry is AUTO for entry in self.queue):
            self.queue.append(AUTO)

    def pump(self) -> None:
        """Queue the next ``response.create`` when no response is active."""
        if self.active is not None or self.pending is not None:
            return
        queue = self.queue
        if not queue:
            return
        head = queue[0]
        if head is AUTO and self.tools_running:
            return  # wait for every tool output of this turn before asking again
        queue.pop(0)
        eid = event_id()
        self.pending = eid
        self.last_create_id = eid
        self.last_create = head
        event: dict[str, Any] = {"type": "response.create", "event_id": eid}
        if head:
            event["response"] = head
        self.outbox.append(event)

    def _abandon(self, response: str) -> None:
        abandoned = self.abandoned
        if not isinstance(abandoned, set):
            abandoned = self.abandoned = set()
        abandoned.add(response)

    def cancel_event(self) -> dict[str, Any] | None:
        """The ``response.cancel`` for the active response (now abandoned), if any."""
        response = self.active
        if response is None:
            return None
        event: dict[str, Any] = {"type": "response.cancel", "event_id": event_id()}
        if not response.startswith("("):
            event["response_id"] = response
        self._abandon(response)
        return event

    def on_error(self, code: Any, client_event_id: Any) -> None:
        """An ``error`` event: settle the ``response.create`` it may refer to."""
        sent_id = self.last_create_id
        if code == "conversation_already_has_active_response":
            if sent_id is not None and client_event_id in (None, sent_id):
                # Our response.create raced a response we had not seen start (server VAD):
                # keep the request and send it after that response's response.done. (A
                # response.created may have arrived meanwhile and been taken for ours.)
                self.last_create_id = None
                self.queue.insert(0, self.last_create if self.last_create is not None else {})
                if self.pending == sent_id:
                    self.pending = None
                if self.active is None:
                    self.active = "(unseen)"
        elif sent_id is not None and client_event_id == sent_id:
            self.last_create_id = None  # that request was refused for good
            if self.pending == sent_id:
                self.pending = None
            self.pump()

    def connection_lost(self, resume: bool) -> None:
        """The socket dropped: the active response failed; requests are sent again."""
        lost = self.active
        if lost is not None:
            self.emit(_response_done({"type": "response.done", "response_id": lost,
                                      "status": "failed", "reason": "connection_lost",
                                      "usage": None}))
            if resume:
                self.follow_up()
        if self.pending is not None and self.last_create is not None:
            self.queue.insert(0, self.last_create)
        self.active = None
        self.pending = None
        self.audio_item = None

    # ------------------------------------------------------------ barge-in
    def barge_in(self, *, force_cancel: bool) -> None:
        """The user spoke over the model: stop the response and cut the unheard audio."""
        response = self.active
        if response is not None:
            if force_cancel or not self.server_interrupts:
                event = self.cancel_event()
                assert event is not None
                self.outbox.append(event)
            self._abandon(response)
            barged = self.barged
            if not isinstance(barged, set):
                barged = self.barged = set()
            barged.add(response)
        item = self.audio_item
        if item is None or item.truncated_ms is not None or not item.audio_chars:
            return
        received = item.audio_ms(self.bytes_per_ms)
        played = self.playback_ms(item)
        if played >= received and response is None:
            self.audio_item = None  # everything was heard: nothing to cut
            return
        end = max(0, min(played, received))
        item.truncated_ms = end
        self.audio_item = None
        self.outbox.append(truncate_event(item.id, end))

    def truncate_position(self, item_id: str | None, audio_end_ms: int | None
                          ) -> tuple[ConversationItem, int] | None:
        """The item to truncate and where (clamped to the audio received), if any."""
        item = self.conversation.get(item_id) if item_id else self.audio_item
        if item is None or not item.audio_chars:
            return None
        received = item.audio_ms(self.bytes_per_ms)
        end = self.playback_ms(item) if audio_end_ms is None else audio_end_ms
        return item, max(0, min(end, received))

    # ------------------------------------------------------------ handlers
    def on_speech_started(self, data: dict[str, Any]) -> None:
        self.emit(SpeechStarted(audio_ms=data.get("audio_start_ms"), item_id=data.get("item_id")))
        self.barge_in(force_cancel=False)

    def on_speech_stopped(self, data: dict[str, Any]) -> None:
        self.emit(SpeechStopped(audio_ms=data.get("audio_end_ms"), item_id=data.get("item_id")))

    def on_response_created(self, data: dict[str, Any]) -> None:
        response = data["response"]
        rid = response.get("id") if isinstance(response, dict) else None
        self.active = rid if isinstance(rid, str) else "(unnamed)"
        self.pending = None
        self.emit(_response_started({"type": "response.started", "response_id": rid}))

    def on_response_done(self, data: dict[str, Any], shallow: bool = False) -> None:
        """``shallow``: the frame's text showed its usage nests within the bound."""
        response = data["response"]
        if not isinstance(response, dict):
            raise TypeError("'response' is not an object")
        rid = response.get("id")
        status = str(response.get("status") or "completed")
        details = response.get("status_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        dropped = False
        barged, abandoned = self.barged, self.abandoned
        if barged or abandoned:  # (both empty unless someone barged in or cancelled)
            ids = {rid, self.active}
            if ids & barged and status == "cancelled":
                reason = "turn_detected"
            dropped = bool(ids & abandoned)
            if isinstance(barged, set):
                barged -= ids
            if isinstance(abandoned, set):
                abandoned -= ids
        usage = response.get("usage")
        if not isinstance(usage, dict):
            usage = None  # (the masquerade session sums what the response.done events carry)
        if not dropped:
            for output in response.get("output") or ():
                # A function call that only shows up here (no output_item.done) still runs.
                if isinstance(output, dict) and output.get("type") == "function_call":
                    self.start_tool(output)
        self.active = None
        self.emit(_response_done({"type": "response.done", "response_id": rid, "status": status,
                                  "reason": reason, "usage": usage}, shallow))
        self.pump()

    def on_audio_delta(self, data: dict[str, Any]) -> None:
        delta = data["delta"]
        rid = data.get("response_id")
        if rid in self.abandoned:
            return  # audio of a response the user talked over: never play it
        item_id = data.get("item_id")
        item = self.audio_item
        if item is None or item.id != item_id:
            item = self.conversation.ensure(item_id or f"audio_{rid}", "message", "assistant")
            if item.response_id is None:
                item.response_id = rid
            self.audio_item = item
            self.audio_started = time.monotonic()
        if self.store_audio:
            item.add_audio(delta)
        else:
            item.audio_chars += len(delta)
        self.emit(_audio_delta(delta, rid, item_id))


def truncate_event(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    """The ``conversation.item.truncate`` of an assistant audio item."""
    return {
        "type": "conversation.item.truncate",
        "event_id": event_id(),
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    }


def _no_tool(call: Mapping[str, Any]) -> None:
    """``start_tool`` until the session's tool round trip is bound (one function for
    every session, not a lambda each)."""
