"""A session's subscribers: one bounded buffer each, and backpressure.

Every :meth:`Session.events <masquerade.Session.events>` call makes an
:class:`EventStream` with its own :class:`Subscriber` buffer; :meth:`Session.emit
<masquerade.Session.emit>` pushes each event into every buffer. Audio deltas are dropped
(and counted) for a subscriber holding ``audio_limit`` events or more; when one holds
``hard_limit``, ``push`` reports pressure and :meth:`Session.publish
<masquerade.Session.publish>` waits for the session's *room* event, which a reader sets
once it has drained half of its buffer.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import anyio

from .events import BaseEvent

if TYPE_CHECKING:
    from .session import Session

__all__ = ["EventStream", "Subscriber"]


class Subscriber:
    __slots__ = ("audio_limit", "buffer", "closed", "dropped", "hard_limit", "session", "waiter")

    def __init__(self, session: Session, audio_limit: int, hard_limit: int) -> None:
        self.session = session
        self.buffer: deque[BaseEvent] = deque()
        self.audio_limit = audio_limit
        self.hard_limit = hard_limit
        self.waiter: anyio.Event | None = None
        self.closed = False
        self.dropped = 0

    def push(self, event: BaseEvent) -> bool:
        buffer = self.buffer
        if event.type == "audio.delta" and len(buffer) >= self.audio_limit:
            self.dropped += 1
            self.session.dropped_audio += 1
            return False
        buffer.append(event)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set()
        return len(buffer) >= self.hard_limit

    def close(self) -> None:
        self.closed = True
        room = self.session._room
        if room is not None:
            self.session._room = None
            room.set()
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set()


class EventStream:
    """An async iterator over a session's events (see :meth:`Session.events`).

    It ends after the ``ended`` event. Close it (``await stream.aclose()``, or use it as an
    async context manager) when you stop reading early, so it stops buffering.
    """

    def __init__(self, session: Session, *, replay: bool) -> None:
        self._session = session
        self._replay = replay
        self._sub: Subscriber | None = None

    @property
    def dropped_audio(self) -> int:
        """Audio deltas this subscriber missed because it fell behind."""
        return self._sub.dropped if self._sub else 0

    def _subscribe(self) -> Subscriber:
        sub = self._session._subscribe(replay=self._replay)
        self._sub = sub
        return sub

    def __aiter__(self) -> EventStream:
        if self._sub is None:
            self._subscribe()
        return self

    async def __anext__(self) -> BaseEvent:
        sub = self._sub or self._subscribe()
        while True:
            if sub.buffer:
                room = self._session._room
                if room is not None and len(sub.buffer) <= sub.hard_limit // 2:
                    self._session._room = None
                    room.set()
                return sub.buffer.popleft()
            if sub.closed:
                raise StopAsyncIteration
            waiter = sub.waiter = anyio.Event()
            await waiter.wait()

    async def aclose(self) -> None:
        if self._sub is not None:
            self._session._unsubscribe(self._sub)
            self._sub.close()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
