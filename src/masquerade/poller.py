"""The shared session poller: one task polls every provisioning session of a host.

Providers like Runway create a session and then need polling until it is ``READY``.
Polling from each session separately multiplies timers and requests; the poller keeps
one schedule for all of them:

* **adaptive interval**: the first poll comes quickly (``initial_interval``), then the
  interval grows by ``growth`` up to ``max_interval``, or up to ``queued_interval`` while
  the provider says the session waits in its capacity queue;
* **a concurrency limit per provider** (``concurrency``), so 1,000 sessions never mean
  1,000 simultaneous requests;
* **retry-after**: a retryable :class:`~masquerade.ProviderError` pushes that session's
  next poll back by the provider's ``retry_after`` (or the current interval);
* **deadline**: a session still not ready after its provisioning timeout fails with
  :class:`~masquerade.ProvisioningTimeout`;
* **idle**: with nothing provisioning, the poller waits on an event and polls nothing.

The schedule is a heap of due times (next poll, or the deadline while a poll is in
flight): a wakeup looks only at the entries that are due, a finished poll re-enters its
entry in O(log n) and wakes the poller only when that entry is due before its current
wakeup. The cost per poll does not grow with the number of provisioning sessions.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ._redact import SecretScope, current_secret_scope, reset_secret_scope, use_secret_scope
from .errors import ProviderError, ProvisioningTimeout, SessionError

if TYPE_CHECKING:
    from .provider import ProviderSession, ProvisioningStatus

__all__ = ["Poller", "PollerStats"]

logger = logging.getLogger("masquerade.poller")


@dataclass
class PollerStats:
    """Counters for tests, benchmarks and dashboards."""

    polls: int = 0
    errors: int = 0
    timeouts: int = 0
    wakeups: int = 0
    examined: int = 0
    """Schedule entries looked at by the poller's wakeups (stays proportional to polls)."""
    max_in_flight: dict[str, int] = field(default_factory=dict)


@dataclass(eq=False)
class _Entry:
    session_id: str
    handle: ProviderSession | None  # dropped once resolved (the heap may outlive it)
    provider: str
    started: float
    deadline: float
    next_at: float
    interval: float
    on_status: Callable[[ProvisioningStatus], None] | None
    done: anyio.Event = field(default_factory=anyio.Event)
    outcome: ProvisioningStatus | BaseException | None = None
    last: ProvisioningStatus | None = None
    in_flight: bool = False
    secrets: SecretScope | None = None  # the session's: secrets a poll registers die with it
    generation: int = 0  # a heap item is current only while its generation matches


class Poller:
    """Polls provisioning sessions until they are ready (see the module docs).

    Args:
        initial_interval: seconds before the first poll and the first interval.
        max_interval: the longest interval while the session provisions.
        queued_interval: the longest interval while the provider reports it queued.
        growth: factor applied to the interval after every poll.
        concurrency: the most polls in flight at once per provider.
    """

    def __init__(
        self,
        *,
        initial_interval: float = 0.25,
        max_interval: float = 2.0,
        queued_interval: float = 5.0,
        growth: float = 1.5,
        concurrency: int = 16,
    ) -> None:
        if initial_interval <= 0 or max_interval < initial_interval or growth < 1:
            raise ValueError("need 0 < initial_interval <= max_interval and growth >= 1")
        self.initial_interval = initial_interval
        self.max_interval = max_interval
        self.queued_interval = max(queued_interval, max_interval)
        self.growth = growth
        self.concurrency = concurrency
        self.stats = PollerStats()
        self._entries: set[_Entry] = set()
        # (due time, tie-breaker, generation, entry); outdated items are skipped lazily.
        self._heap: list[tuple[float, int, int, _Entry]] = []
        self._order = itertools.count()
        self._wake_at = -math.inf  # when the sleeping loop wakes; -inf while it runs
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._in_flight: dict[str, int] = {}
        self._wakeup = anyio.Event()
        self._task_group: TaskGroup | None = None

    @property
    def provisioning(self) -> int:
        """How many sessions are waiting to become ready."""
        return len(self._entries)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The poller's one task (the host starts it when it is entered)."""
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            task_status.started()
            try:
                while True:
                    self._wakeup = anyio.Event()
                    self._wake_at = -math.inf
                    delay = self._tick(tg)
                    if delay is None:
                        self._wake_at = math.inf
                        await self._wakeup.wait()  # idle: nothing is provisioning
                    else:
                        self._wake_at = anyio.current_time() + delay
                        with anyio.move_on_after(delay):
                            await self._wakeup.wait()
                    self.stats.wakeups += 1
            finally:
                self._task_group = None

    def _schedule(self, entry: _Entry, at: float) -> None:
        entry.generation += 1
        heapq.heappush(self._heap, (at, next(self._order), entry.generation, entry))
        if at < self._wake_at:
            self._wakeup.set()

    def _tick(self, tg: TaskGroup) -> float | None:
        now = anyio.current_time()
        heap = self._heap
        stats = self.stats
        while heap and heap[0][0] <= now:
            _, _, generation, entry = heapq.heappop(heap)
            stats.examined += 1
            if generation != entry.generation or entry.done.is_set():
                continue
            if now >= entry.deadline:
                stats.timeouts += 1
                self._resolve(
                    entry,
                    ProvisioningTimeout(
                        entry.session_id,
                        now - entry.started,
                        queued=bool(entry.last and entry.last.queued),
                    ),
                )
                continue
            entry.in_flight = True
            self._schedule(entry, entry.deadline)  # while the poll runs: only the deadline
            tg.start_soon(self._poll_one, entry)
        while heap and (heap[0][2] != heap[0][3].generation or heap[0][3].done.is_set()):
            heapq.heappop(heap)
            stats.examined += 1
        if len(heap) > 64 and len(heap) > 4 * len(self._entries):
            # Outdated items of sessions that finished long before their deadline.
            self._heap = heap = [i for i in heap if i[2] == i[3].generation]
            heapq.heapify(heap)
        if not heap:
            return None
        return max(0.0, heap[0][0] - now)

    async def _poll_one(self, entry: _Entry) -> None:
        limiter = self._limiters.get(entry.provider)
        if limiter is None:
            limiter = self._limiters[entry.provider] = anyio.CapacityLimiter(self.concurrency)
        try:
            async with limiter:
                handle = entry.handle
                if handle is None or entry.done.is_set():
                    return
                self._in_flight[entry.provider] = n = self._in_flight.get(entry.provider, 0) + 1
                peak = self.stats.max_in_flight
                peak[entry.provider] = max(peak.get(entry.provider, 0), n)
                self.stats.polls += 1
                scope = use_secret_scope(entry.secrets)
                try:
                    status = await handle.poll()
                finally:
                    reset_secret_scope(scope)
                    self._in_flight[entry.provider] -= 1
        except ProviderError as exc:
            self.stats.errors += 1
            if not exc.retryable:
                self._resolve(entry, exc)
                return
            wait = max(exc.retry_after or 0.0, entry.interval)
            logger.info(
                "status poll of session %s failed (%s); retrying in %.2fs",
                entry.session_id,
                exc.message,
                wait,
            )
            entry.next_at = anyio.current_time() + wait
            entry.interval = min(entry.interval * self.growth, self.max_interval)
        except Exception as exc:
            self.stats.errors += 1
            self._resolve(entry, exc)
            return
        else:
            if entry.done.is_set():  # timed out meanwhile
                return
            if status != entry.last:
                entry.last = status
                if entry.on_status is not None:
                    try:
                        entry.on_status(status)
                    except Exception:
                        logger.exception("status callback of session %s raised", entry.session_id)
            if status.state != "not_ready":
                self._resolve(entry, status)
                return
            cap = self.queued_interval if status.queued else self.max_interval
            entry.interval = min(entry.interval * self.growth, cap)
            entry.next_at = anyio.current_time() + entry.interval
        finally:
            entry.in_flight = False
            if not entry.done.is_set():
                self._schedule(entry, min(entry.next_at, entry.deadline))

    def _resolve(self, entry: _Entry, outcome: ProvisioningStatus | BaseException) -> None:
        if entry.done.is_set():
            return
        entry.outcome = outcome
        entry.done.set()
        entry.generation += 1
        # Outdated heap items may outlive the session: keep nothing of it reachable.
        entry.handle = entry.on_status = entry.secrets = None
        self._entries.discard(entry)

    async def wait_ready(
        self,
        handle: ProviderSession,
        *,
        session_id: str,
        provider: str,
        timeout: float,
        on_status: Callable[[ProvisioningStatus], None] | None = None,
    ) -> ProvisioningStatus:
        """Poll ``handle`` until it leaves ``not_ready``; return that status.

        Raises :class:`~masquerade.ProvisioningTimeout` after ``timeout`` seconds, or the
        provider's non-retryable :class:`~masquerade.ProviderError`.
        """
        if self._task_group is None:
            raise SessionError(
                "the poller is not running",
                hint="run sessions inside `async with Host() as host:` (host.session() "
                "and host.run_session() do this for you)",
            )
        now = anyio.current_time()
        entry = _Entry(
            session_id=session_id,
            handle=handle,
            provider=provider,
            started=now,
            deadline=now + timeout,
            next_at=now,  # first poll right away: a provider may be ready at once
            interval=self.initial_interval,
            on_status=on_status,
            secrets=current_secret_scope(),
        )
        self._entries.add(entry)
        self._schedule(entry, now)
        try:
            await entry.done.wait()
        finally:
            self._resolve(entry, entry.outcome or SessionError("cancelled while provisioning"))
        outcome, entry.outcome = entry.outcome, None
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome
