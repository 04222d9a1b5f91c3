"""One timer for every session's bounds: ``max_duration`` and the provisioning deadline.

A session that ran its own timer for ``max_duration`` would hold, for the whole call, an
event-loop timer handle, a copy of its task's context and the context's own storage:
about half a kilobyte and five objects the cycle collector walks, per idle session, for
something that fires at most once; and asyncio keeps a cancelled timer, with that copy,
until it is due, so even the provisioning bounds that are cancelled at once would stay.
The host keeps one heap of those deadlines instead, and one task that sleeps until the
earliest and calls its callback (for ``max_duration``: cancel the session's scope, which
then ends with reason ``deadline``)::

    entry = deadlines.add(anyio.current_time() + 300, session._expire)
    ...
    deadlines.discard(entry)  # the session ended first

An entry of an ended session no longer refers to it (the session is freed by reference
counting); entries discarded before their time are dropped from the heap once they make
up an eighth of it, so a host that runs many short sessions keeps no backlog.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskStatus

__all__ = ["Deadlines"]

logger = logging.getLogger("masquerade.host")

#: A heap entry: [when, sequence number, callback or None once discarded or fired].
Entry = list[Any]


class Deadlines:
    """A heap of (time, callback), run by one task (:meth:`run`, started by the host)."""

    __slots__ = ("_discarded", "_heap", "_next", "_seq", "_wakeup", "fired")

    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._seq = itertools.count()
        self._discarded = 0
        self._next = math.inf  # when run() wakes up next
        self._wakeup: anyio.Event | None = None
        #: Callbacks called so far (for tests and dashboards).
        self.fired = 0

    def __len__(self) -> int:
        """Entries still waiting (discarded ones not counted)."""
        return len(self._heap) - self._discarded

    def add(self, when: float, callback: Callable[[], Any]) -> Entry:
        """Call ``callback()`` at ``when`` (``anyio.current_time()`` clock); returns the
        entry to :meth:`discard`. The callback runs in the deadlines task: it must not
        block (an exception it raises is logged)."""
        entry: Entry = [when, next(self._seq), callback]
        heapq.heappush(self._heap, entry)
        if when < self._next and self._wakeup is not None:
            self._wakeup.set()  # earlier than the sleep in progress
        return entry

    def discard(self, entry: Entry) -> None:
        """Forget ``entry`` (it no longer refers to its callback); O(1)."""
        if entry[2] is None:
            return  # fired or discarded already
        entry[2] = None
        self._discarded += 1
        heap = self._heap
        # Compacted once an eighth of the heap is discarded: each discard costs O(1)
        # amortized, and a heap of many opening sessions keeps few dead entries.
        if self._discarded > 32 and self._discarded * 8 > len(heap):
            heap[:] = [e for e in heap if e[2] is not None]
            heapq.heapify(heap)
            self._discarded = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Fire due entries until cancelled (the host runs this in its task group)."""
        task_status.started()
        heap = self._heap
        while True:
            now = anyio.current_time()
            while heap and (heap[0][2] is None or heap[0][0] <= now):
                entry = heapq.heappop(heap)
                callback = entry[2]
                if callback is None:
                    self._discarded -= 1
                    continue
                entry[2] = None
                self.fired += 1
                try:
                    callback()
                except Exception:  # one failing callback must not end every session's bound
                    logger.exception("a deadline callback raised; the others still run")
            self._next = heap[0][0] if heap else math.inf
            wakeup = self._wakeup = anyio.Event()
            with anyio.move_on_at(self._next):  # (no timer while nothing waits)
                await wakeup.wait()
            self._wakeup = None
