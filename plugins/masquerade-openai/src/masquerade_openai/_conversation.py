"""The conversation store: every item of a Realtime conversation, kept up to date.

It follows what the server says (``conversation.item.added`` / ``done``, the response
streams, input transcriptions, truncations, deletions) the way the JavaScript
``RealtimeConversation`` of the original beta client did, so an application can read the
conversation at any time::

    rt = masquerade_openai.realtime(session)
    for item in rt.items():
        print(item.role, item.type, item.text or item.transcript)

    item = await rt.next_completed_item()      # waits for the next finished item
    if item.type == "function_call":
        print(item.name, item.arguments, item.output)

With the session option ``store_audio=True``, assistant audio is kept as the base64
chunks that arrived and decoded only when :attr:`ConversationItem.audio` is read. It is
off by default (the ``audio.delta`` events carry the audio; keeping an hour of it takes
~170 MB); the milliseconds received are counted either way (:meth:`audio_ms`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import anyio

from ._shared import EMPTY

__all__ = ["ConversationItem", "RealtimeConversation"]

# Bytes of audio per millisecond, by GA output format type.
BYTES_PER_MS = {"audio/pcm": 48.0, "audio/pcmu": 8.0, "audio/pcma": 8.0}


class ConversationItem:
    """One conversation item, with its content gathered in plain fields.

    Attributes:
        id: the item id.
        type: ``message``, ``function_call``, ``function_call_output`` (or a newer type).
        role: ``user``, ``assistant`` or ``system`` for messages, else ``None``.
        status: ``in_progress``, ``completed`` or ``incomplete``.
        text: text content (``input_text`` / ``output_text``), concatenated.
        transcript: audio transcript (the user's input transcription, or the assistant's
            spoken words), concatenated.
        name, call_id, arguments: for ``function_call`` items (``arguments`` is the JSON
            text as the model produced it).
        output: for ``function_call`` items, the output sent back once known; for
            ``function_call_output`` items, the output itself.
        response_id: the response that produced the item, for assistant output.
        truncated_ms: where the item's audio was truncated, if it was.
        raw: the last item payload the server sent (without audio).
    """

    __slots__ = (
        "_arguments",
        "_audio_cache",
        "_audio_chunks",
        "_text",
        "_transcript",
        "audio_chars",
        "call_id",
        "id",
        "name",
        "output",
        "raw",
        "response_id",
        "role",
        "status",
        "truncated_ms",
        "type",
    )

    def __init__(self, item_id: str, item_type: str, role: str | None = None) -> None:
        self.id = item_id
        self.type = item_type
        self.role = role
        self.status = "in_progress"
        # Streamed text arrives in many small deltas: kept as parts (appending to a str
        # attribute copies it every time) and joined when read.
        self._text: list[str] = []
        self._transcript: list[str] = []
        self._arguments: list[str] = []
        self.name: str | None = None
        self.call_id: str | None = None
        self.output: str | None = None
        self.response_id: str | None = None
        self.truncated_ms: int | None = None
        self.raw: dict[str, Any] = {}
        self.audio_chars = 0
        self._audio_chunks: list[str] = []
        self._audio_cache: bytes | None = None

    def __repr__(self) -> str:
        what = self.role or self.name or ""
        return f"<ConversationItem {self.id} {self.type} {what} {self.status}>"

    @property
    def text(self) -> str:
        """Text content (``input_text`` / ``output_text``), concatenated."""
        return _joined(self._text)

    @text.setter
    def text(self, value: str) -> None:
        self._text = [value] if value else []

    @property
    def transcript(self) -> str:
        """The audio transcript, concatenated."""
        return _joined(self._transcript)

    @transcript.setter
    def transcript(self, value: str) -> None:
        self._transcript = [value] if value else []

    @property
    def arguments(self) -> str:
        """A function call's arguments (JSON text as the model produced it)."""
        return _joined(self._arguments)

    @arguments.setter
    def arguments(self, value: str) -> None:
        self._arguments = [value] if value else []

    def add_text(self, delta: str) -> None:
        self._text.append(delta)

    def add_transcript(self, delta: str) -> None:
        self._transcript.append(delta)

    def add_arguments(self, delta: str) -> None:
        self._arguments.append(delta)

    @property
    def audio(self) -> bytes:
        """The item's audio received so far, decoded (cached until more arrives); empty
        unless the session keeps audio (option ``store_audio``)."""
        if self._audio_cache is None:
            self._audio_cache = b"".join(base64.b64decode(c) for c in self._audio_chunks)
        return self._audio_cache

    def add_audio(self, b64: str) -> None:
        self._audio_chunks.append(b64)
        self.audio_chars += len(b64)
        self._audio_cache = None

    def audio_ms(self, bytes_per_ms: float = 48.0) -> int:
        """Milliseconds of audio received for this item (24 kHz PCM16 by default)."""
        return int(self.audio_chars * 3 // 4 / bytes_per_ms)

    @property
    def completed(self) -> bool:
        return self.status != "in_progress"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no audio bytes)."""
        return {
            "id": self.id,
            "type": self.type,
            "role": self.role,
            "status": self.status,
            "text": self.text,
            "transcript": self.transcript,
            "name": self.name,
            "call_id": self.call_id,
            "arguments": self.arguments,
            "output": self.output,
            "response_id": self.response_id,
            "truncated_ms": self.truncated_ms,
            "audio_ms": self.audio_ms(),
        }

    # ------------------------------------------------------------ from payloads
    def absorb(self, item: Mapping[str, Any]) -> None:
        """Take what a server item payload says (status, content, call fields)."""
        content = item.get("content")
        texts: list[str] | None = None  # (lists from the first part that has one)
        transcripts: list[str] | None = None
        audio = False
        if content and isinstance(content, list):
            # One pass over the parts: their text, their transcript, and whether any
            # carries audio. (A dict is checked by its exact type first: an ABC check
            # per part costs more than the rest of the loop.)
            for part in content:
                if type(part) is not dict and not isinstance(part, Mapping):
                    continue
                if "audio" in part:
                    audio = True
                text = part.get("text")
                if isinstance(text, str):
                    if texts is None:
                        texts = [text]
                    else:
                        texts.append(text)
                transcript = part.get("transcript")
                if isinstance(transcript, str):
                    if transcripts is None:
                        transcripts = [transcript]
                    else:
                        transcripts.append(transcript)
        if audio:
            # conversation.item.retrieved carries the audio: keep the payload without it.
            self.raw = {k: v for k, v in item.items() if k != "content"} | {
                "content": [
                    {k: v for k, v in part.items() if k != "audio"}
                    if isinstance(part, Mapping) else part
                    for part in content  # type: ignore[union-attr]
                ]
            }
        else:
            # The payload is a fresh dict from json.loads that nobody changes: keep it.
            self.raw = item  # type: ignore[assignment]
        status = item.get("status")
        if isinstance(status, str):
            self.status = status
        role = item.get("role")
        if isinstance(role, str):
            self.role = role
        if self.type == "function_call":
            self.name = item.get("name") or self.name
            self.call_id = item.get("call_id") or self.call_id
            arguments = item.get("arguments")
            if isinstance(arguments, str) and arguments:
                self.arguments = arguments
        elif self.type == "function_call_output":
            self.call_id = item.get("call_id") or self.call_id
            output = item.get("output")
            if isinstance(output, str):
                self.output = output
        # Payloads without text (GA items omit audio and, mid-stream, transcripts) must
        # not wipe what the streams already gathered.
        if texts:
            joined = "".join(texts)
            if joined:
                self.text = joined
        if transcripts:
            joined = "".join(transcripts)
            if joined:
                self.transcript = joined

    def replay_payload(self) -> dict[str, Any] | None:
        """The ``conversation.item.create`` item that recreates this one in a new session,
        or ``None`` when it cannot (or need not) be recreated."""
        if self.type == "message":
            spoken = self.text or self.transcript
            if self.role == "assistant":
                if not spoken:
                    return None
                content = [{"type": "output_text", "text": spoken}]
            elif self.role in ("user", "system"):
                if not spoken:
                    return None  # audio without a transcript: nothing to say it with
                content = [{"type": "input_text", "text": spoken}]
            else:
                return None
            return {"id": self.id, "type": "message", "role": self.role, "content": content}
        if self.type == "function_call" and self.call_id and self.name:
            return {
                "id": self.id,
                "type": "function_call",
                "call_id": self.call_id,
                "name": self.name,
                "arguments": self.arguments or "{}",
            }
        if self.type == "function_call_output" and self.call_id is not None:
            return {
                "id": self.id,
                "type": "function_call_output",
                "call_id": self.call_id,
                "output": self.output or "",
            }
        return None


def _joined(parts: list[str]) -> str:
    if len(parts) > 1:
        parts[:] = ["".join(parts)]  # join once; later reads are free
    return parts[0] if parts else ""


class RealtimeConversation:
    """The items of one conversation, in order, with waiting helpers.

    :meth:`next_item` and :meth:`next_completed_item` each keep a cursor: every call
    returns the next item not yet returned by that method (waiting when there is none),
    so a loop over them never misses an item.
    """

    # Slots: thousands of idle sessions each hold one of these.
    __slots__ = (
        "_by_id", "_changed", "_completed", "_completed_cursor", "_completed_ids",
        "_cursor", "_items", "closed",
    )

    def __init__(self) -> None:
        self._items: list[ConversationItem] = []
        self._by_id: dict[str, ConversationItem] = {}
        self._completed: list[ConversationItem] = []
        self._completed_ids: AbstractSet[str] = EMPTY  # a set from the first add
        self._cursor = 0
        self._completed_cursor = 0
        self._changed: anyio.Event | None = None
        self.closed = False

    # ------------------------------------------------------------ reading
    def items(self) -> list[ConversationItem]:
        """All items, in conversation order (a copy of the list)."""
        return list(self._items)

    def get(self, item_id: str) -> ConversationItem | None:
        return self._by_id.get(item_id)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Any:
        return iter(list(self._items))

    async def next_item(self) -> ConversationItem:
        """Wait for and return the next item added to the conversation.

        Raises :class:`EOFError` when the session has ended and no item is left.
        """
        while True:
            if self._cursor < len(self._items):
                item = self._items[self._cursor]
                self._cursor += 1
                return item
            await self._wait()

    async def next_completed_item(self) -> ConversationItem:
        """Wait for and return the next item that finished (completed or incomplete).

        Raises :class:`EOFError` when the session has ended and no item is left.
        """
        while True:
            if self._completed_cursor < len(self._completed):
                item = self._completed[self._completed_cursor]
                self._completed_cursor += 1
                return item
            await self._wait()

    async def _wait(self) -> None:
        if self.closed:
            raise EOFError("the session has ended; no more conversation items will arrive")
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    def _notify(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    def close(self) -> None:
        """Mark the conversation finished: waiters wake up with :class:`EOFError`."""
        self.closed = True
        self._notify()

    # ------------------------------------------------------------ updating
    def ensure(
        self, item_id: str, item_type: str = "message", role: str | None = None
    ) -> ConversationItem:
        """The item with this id, created (and announced) when it is new."""
        item = self._by_id.get(item_id)
        if item is None:
            item = ConversationItem(item_id, item_type, role)
            self._by_id[item_id] = item
            self._items.append(item)
            self._notify()
        return item

    def upsert(self, payload: Mapping[str, Any]) -> ConversationItem | None:
        """Add or update an item from a server payload; ``None`` when it has no id."""
        item_id = payload.get("id")
        if not isinstance(item_id, str) or not item_id:
            return None
        item = self._by_id.get(item_id)
        if item is None:
            item_type = payload.get("type")
            role = payload.get("role")
            item = self.ensure(
                item_id,
                item_type if isinstance(item_type, str) else "message",
                role if isinstance(role, str) else None,
            )
        item.absorb(payload)
        if item.status != "in_progress" and item_id not in self._completed_ids:
            self.mark_completed(item)
        return item

    def mark_completed(self, item: ConversationItem) -> None:
        if item.status == "in_progress":
            item.status = "completed"
        ids = self._completed_ids
        if item.id not in ids:
            if not isinstance(ids, set):
                ids = self._completed_ids = set()
            ids.add(item.id)
            self._completed.append(item)
            self._notify()

    def attach_output(self, call_id: str, output: str) -> None:
        """Record a tool's output on its ``function_call`` item."""
        for item in reversed(self._items):
            if item.type == "function_call" and item.call_id == call_id:
                item.output = output
                return

    def delete(self, item_id: str) -> None:
        item = self._by_id.pop(item_id, None)
        if item is None:
            return
        index = self._items.index(item)
        del self._items[index]
        if index < self._cursor:  # keep the cursor on the same next item
            self._cursor -= 1

    def truncate(self, item_id: str, audio_end_ms: int) -> None:
        item = self._by_id.get(item_id)
        if item is not None:
            item.truncated_ms = audio_end_ms
            # The server drops the transcript of a truncated item: so do we.
            item.transcript = ""

    def clear(self) -> None:
        self._items.clear()
        self._by_id.clear()
        self._completed.clear()
        self._completed_ids = EMPTY
        self._cursor = self._completed_cursor = 0
