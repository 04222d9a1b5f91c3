"""What an application sends while the call runs: text, audio, responses, barge-in.

:class:`RealtimeInput` holds the public send API of
:class:`~masquerade_openai.OpenAIRealtimeSession` (which inherits it): each method turns
one application intent into client events, through the session's link (sending waits
while a renewal brings up a new socket) and its turn taking (``response.create`` is
sequenced, barge-in cuts the unheard audio).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from masquerade import ConfigurationError
from masquerade.events import TranscriptDone

from ._conversation import RealtimeConversation
from ._fast import builder
from ._options import deep_merge
from ._shared import event_id, item_id
from ._turns import truncate_event

if TYPE_CHECKING:
    from ._calls import RealtimeCalls
    from ._link import RealtimeLink
    from ._renewal import Renewal
    from ._turns import TurnTaking

__all__ = ["RealtimeInput", "MAX_APPEND_BYTES"]

#: Raw audio bytes per ``input_audio_buffer.append``: base64 grows data by 4/3, and the
#: server takes at most 15 MiB per event.
MAX_APPEND_BYTES = 11 * 2**20

_transcript_done = builder(TranscriptDone)


class RealtimeInput:
    """The send API of a Realtime session (a base of ``OpenAIRealtimeSession``)."""

    conversation: RealtimeConversation
    _link: RealtimeLink
    _turns: TurnTaking
    _renewal: Renewal
    _calls: RealtimeCalls | None

    @property
    def call_id(self) -> str | None:
        raise NotImplementedError

    def _emit(self, event: Any) -> Any:
        """Deliver an event (replaced by the session's own ``emit`` once connected)."""
        return None

    async def send_text(self, text: str, *, respond: bool = True, role: str = "user") -> str:
        """Add a text message to the conversation; with ``respond``, ask for a response.

        Returns the new item's id. The turn appears in the transcript right away.
        """
        if role not in ("user", "system"):
            raise ConfigurationError(
                f"send_text role must be 'user' or 'system', not {role!r}",
                hint="assistant messages come from the model",
            )
        new_id = item_id()
        payload = {
            "id": new_id,
            "type": "message",
            "role": role,
            "content": [{"type": "input_text", "text": text}],
        }
        self.conversation.upsert({**payload, "status": "completed"})
        await self._link.send({"type": "conversation.item.create", "event_id": event_id(),
                               "item": payload})
        self._emit(_transcript_done({"type": "transcript.done", "role": role, "text": text,
                                     "turn": new_id}))
        if respond:
            await self.create_response()
        return new_id

    async def send_audio(self, pcm: bytes) -> None:
        """Append raw audio (in the session's input format) to the input buffer.

        Large buffers are split so each event stays under the server's 15 MiB limit.
        """
        view = memoryview(pcm)
        for start in range(0, len(view), MAX_APPEND_BYTES):
            chunk = base64.b64encode(view[start : start + MAX_APPEND_BYTES]).decode("ascii")
            # base64 needs no JSON escaping: build the frame without json.dumps' scan.
            await self._link.send_text(
                '{"type":"input_audio_buffer.append","audio":"' + chunk + '"}'
            )

    async def commit(self) -> None:
        """Commit the input audio buffer as a user message (for manual turns)."""
        await self._link.send({"type": "input_audio_buffer.commit", "event_id": event_id()})

    async def clear_audio(self) -> None:
        """Drop the audio appended since the last commit."""
        await self._link.send({"type": "input_audio_buffer.clear", "event_id": event_id()})

    async def create_response(self, **response: Any) -> None:
        """Ask the model to respond (``response.create``), with optional GA response fields
        (``instructions``, ``output_modalities``, ``tools``, ``conversation``...).

        Requests are sequenced: one is sent only when no response is active, so the server
        never answers ``conversation_already_has_active_response``.
        """
        self._turns.request(dict(response))
        await self._link.flush()

    async def cancel_response(self) -> bool:
        """Cancel the response in progress; ``False`` when there was none."""
        event = self._turns.cancel_event()
        if event is None:
            return False
        await self._link.send(event)
        return True

    async def interrupt(self) -> None:
        """Barge in from the application side: cancel the response and truncate the audio
        at the current playback position."""
        self._turns.barge_in(force_cancel=True)
        await self._link.flush()

    async def truncate(self, item_id: str | None = None, audio_end_ms: int | None = None) -> int:
        """Truncate an assistant audio item at ``audio_end_ms`` (default: the playback
        position), clamped to the audio received. Returns the position used."""
        found = self._turns.truncate_position(item_id, audio_end_ms)
        if found is None:
            raise ConfigurationError(
                "there is no assistant audio to truncate",
                hint="only assistant audio items that received audio can be truncated",
            )
        item, end = found
        await self._link.send(truncate_event(item.id, end))
        return end

    def report_playback(self, audio_ms: int, item_id: str | None = None) -> None:
        """Tell the session how much of an assistant item's audio has actually been played
        (for telephony or a remote player). Barge-in then truncates there; without
        reports, playback is assumed to start with the first delta at real-time speed."""
        self._turns.report_playback(audio_ms, item_id)

    async def update(self, session: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Send a partial ``session.update`` (GA session fields); it is kept, so a renewed
        session is configured the same way."""
        change: dict[str, Any] = {"type": "realtime", **dict(session or {}), **fields}
        renewal = self._renewal
        renewal.session_payload = deep_merge(renewal.session_payload, change)
        await self._link.send({"type": "session.update", "event_id": event_id(),
                               "session": change})

    async def send_event(self, event: Mapping[str, Any]) -> None:
        """Send any client event as is (an escape hatch for new protocol features)."""
        await self._link.send(dict(event))

    async def hangup(self) -> bool:
        """Hang up the SIP or WebRTC call this session is attached to."""
        if not self.call_id or self._calls is None:
            raise ConfigurationError(
                "this session is not attached to a call", hint="hangup needs a call_id session"
            )
        return await self._calls.hangup(self.call_id)
