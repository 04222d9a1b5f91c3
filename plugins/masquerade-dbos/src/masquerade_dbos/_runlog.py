"""What a durable run leaves for the processes that follow it (the call service).

- **Events.** Every graph event of a run (node started and finished, the session events
  of its AvatarNodes, a final ``graph.ended`` or ``graph.error``) in the JSON form
  ``masquerade run --json`` prints, stored in the table ``masquerade_run_events`` of the
  run's database, each with an id that only grows within a run (what Server-Sent Events
  resume from). Audio frames are not stored.
- **Join credentials.** When an AvatarNode's session is READY, the frontend's join
  credentials are set as the run's DBOS workflow event :data:`CREDENTIALS_KEY` (and
  replaced by ``{"ended": True}`` when the session ends), so any process can wait for
  them with ``DBOS.get_event``. They are never written to the events table or to a log.
- **Browser offers.** A frontend's WebRTC SDP offer for a run (``POST /v1/runs/{id}/sdp``)
  goes through the table ``masquerade_run_offers``: the worker running the run's
  browser-frontend session (one whose provider session has ``answer_offer(sdp)``) takes
  it, answers it, and writes the answer back, whichever processes they are.
- **Cancellation.** A run cancelled through DBOS (from any process) is noticed by the
  worker running it, which cancels the run's task: a live call ends through its cancel
  path.

Blocking database calls: run them in a worker thread.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import sqlalchemy as sa

from masquerade.graph import GraphEvent, NodeEvent

from ._executors import engine_url

__all__ = [
    "CREDENTIALS_KEY",
    "RunLog",
    "EventRecorder",
    "publishing_credentials",
    "answer_offers",
    "run_logs",
]

logger = logging.getLogger("masquerade.dbos")

#: The DBOS workflow-event key holding a run's current join credentials.
CREDENTIALS_KEY = "masquerade.credentials"

_metadata = sa.MetaData()


def _row_id() -> sa.Column[int]:
    """An id that only grows (SQLite's INTEGER PRIMARY KEY is its 64-bit rowid)."""
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


run_events = sa.Table(
    "masquerade_run_events",
    _metadata,
    _row_id(),
    sa.Column("run_id", sa.String(255), nullable=False, index=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

run_offers = sa.Table(
    "masquerade_run_offers",
    _metadata,
    _row_id(),
    sa.Column("run_id", sa.String(255), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # offer | answer | error
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

#: The event log of each run executing in this process (what its offer pump uses).
run_logs: dict[str, RunLog] = {}


class RunLog:
    """The events table of one database."""

    def __init__(self, url: str) -> None:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=4, max_overflow=8)
        self.engine = sa.create_engine(engine_url(url), **kwargs)

    def create(self) -> None:
        try:
            _metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:
            # Two processes creating the table at once: one of them wins.
            _metadata.create_all(self.engine, checkfirst=True)

    def append(self, run_id: str, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        now = time.time()
        rows = [
            {"run_id": run_id, "data": json.dumps(e, ensure_ascii=False), "created_at": now}
            for e in events
        ]
        with self.engine.begin() as conn:
            conn.execute(sa.insert(run_events), rows)

    def read(self, run_id: str, after: int = 0, limit: int = 500) -> list[tuple[int, str]]:
        """Up to ``limit`` events of ``run_id`` with an id above ``after``: ``(id, json)``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(run_events.c.id, run_events.c.data)
                .where(run_events.c.run_id == run_id, run_events.c.id > after)
                .order_by(run_events.c.id)
                .limit(limit)
            )
            return [(int(row[0]), str(row[1])) for row in rows]

    def put(self, run_id: str, kind: str, body: str) -> int:
        """Write an SDP ``offer``, ``answer`` or ``error`` for ``run_id``; its id."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.insert(run_offers).values(
                    run_id=run_id, kind=kind, body=body, created_at=time.time()
                )
            )
            key = result.inserted_primary_key
            return int(key[0]) if key else 0

    def take(
        self, run_id: str, kinds: tuple[str, ...], after: int = 0
    ) -> tuple[int, str, str] | None:
        """The first row of ``kinds`` for ``run_id`` with an id above ``after``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(run_offers.c.id, run_offers.c.kind, run_offers.c.body)
                .where(
                    run_offers.c.run_id == run_id,
                    run_offers.c.kind.in_(kinds),
                    run_offers.c.id > after,
                )
                .order_by(run_offers.c.id)
                .limit(1)
            ).first()
        return None if row is None else (int(row[0]), str(row[1]), str(row[2]))

    def close(self) -> None:
        self.engine.dispose()


class EventRecorder:
    """The ``on_event`` of a durable run: batches its events into the :class:`RunLog`.

    Writes happen in a task of their own (one transaction per batch), so a session's
    event loop never waits for the database.
    """

    def __init__(self, log: RunLog, run_id: str) -> None:
        self.log = log
        self.run_id = run_id
        self._pending: list[dict[str, Any]] = []
        self._wake = anyio.Event()
        self._closed = False
        self._lock = anyio.Lock()  # one batch at a time: events keep their order

    def __call__(self, event: GraphEvent) -> None:
        if isinstance(event, NodeEvent) and event.event.type == "audio.delta":
            return
        self.add(event.as_json())

    def add(self, data: dict[str, Any]) -> None:
        self._pending.append(data)
        self._wake.set()

    async def flush(self) -> None:
        async with self._lock:
            await self._write()

    async def _write(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            try:
                await anyio.to_thread.run_sync(self.log.append, self.run_id, batch)
            except Exception as exc:  # events are for watchers: never fail the run for them
                logger.warning("run %s: %d event(s) not recorded: %s", self.run_id, len(batch), exc)

    async def writer(self) -> None:
        """Write batches until :meth:`close`; then write what is left."""
        while not self._closed:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self.flush()

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        with anyio.CancelScope(shield=True):
            await self.flush()


def publishing_credentials(
    emit: Callable[[GraphEvent], Awaitable[None]] | None,
) -> Callable[[GraphEvent], Awaitable[None]]:
    """Wrap a node's ``emit``: a READY session's join credentials become the run's
    :data:`CREDENTIALS_KEY` workflow event (call it inside the node's DBOS step)."""
    from dbos import DBOS

    async def publish(event: GraphEvent) -> None:
        if isinstance(event, NodeEvent) and event.event.type in ("ready", "ended"):
            inner = event.event
            value: dict[str, Any]
            if inner.type == "ready":
                credentials = inner.__dict__.get("credentials")
                value = {
                    "node": event.node,
                    "session_id": event.session_id,
                    "provider": getattr(credentials, "provider", None),
                    "kind": getattr(credentials, "kind", None),
                    "credentials": credentials.reveal() if credentials is not None else {},
                }
            else:
                value = {"node": event.node, "session_id": event.session_id, "ended": True}
            try:
                await DBOS.set_event_async(CREDENTIALS_KEY, value)
            except Exception as exc:
                logger.warning("could not publish the session state of %s: %s", event.node, exc)
        if emit is not None:
            await emit(event)

    return publish


async def answer_offers(
    log: RunLog, run_id: str, session: Any, *, timeout: float, interval: float = 0.1
) -> None:
    """Answer the SDP offers posted for ``run_id`` with ``session.answer_offer`` (a
    browser-frontend provider session), until it answered one or ``timeout`` passed."""
    after = 0
    with anyio.move_on_after(timeout):
        while run_id in run_logs:  # the run is still executing here
            found = await anyio.to_thread.run_sync(log.take, run_id, ("offer",), after)
            if found is None:
                await anyio.sleep(interval)
                continue
            after, _, offer = found
            try:
                with anyio.fail_after(30):
                    answer = await session.answer_offer(offer)
            except Exception as exc:
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                logger.warning("run %s: answering the browser's offer failed: %s", run_id, message)
                await anyio.to_thread.run_sync(log.put, run_id, "error", str(message))
                continue
            await anyio.to_thread.run_sync(log.put, run_id, "answer", answer)
            return
