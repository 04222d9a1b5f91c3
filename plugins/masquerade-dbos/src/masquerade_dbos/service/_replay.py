"""Webhook replay protection shared by every ``serve`` process of a database.

A verified webhook's id is claimed in the table ``masquerade_webhook_ids`` of the runs
database until its timestamp leaves the signature tolerance. The claim is one
``INSERT ... ON CONFLICT DO NOTHING`` on the id's primary key, so of two processes (or
threads) claiming the same id at once exactly one wins, whichever ``serve`` process the
delivery reached. Expired ids are pruned a bounded batch at a time.
"""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["DatabaseReplayStore", "webhook_ids"]

logger = logging.getLogger("masquerade.service")

_metadata = sa.MetaData()
webhook_ids = sa.Table(
    "masquerade_webhook_ids",
    _metadata,
    sa.Column("webhook_id", sa.String(255), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)


class DatabaseReplayStore:
    """A :class:`masquerade_openai.ReplayStore` in a SQL database (PostgreSQL or SQLite).

    ``claim(webhook_id, expires_at)`` is atomic across processes: the first claim of an id
    wins until ``expires_at`` (Unix seconds); later claims return ``False`` (a replay).
    An expired id may be claimed again. Each claim prunes at most ``prune_batch`` expired
    ids, at most once every ``prune_interval`` seconds per store, so the table stays
    bounded by the ids of the last tolerance window. Blocking: call it in a worker thread.
    """

    def __init__(
        self, engine: sa.Engine, *, prune_batch: int = 500, prune_interval: float = 30.0
    ) -> None:
        if prune_batch < 1:
            raise ValueError("prune_batch must be at least 1")
        self.engine = engine
        self.prune_batch = prune_batch
        self.prune_interval = prune_interval
        self._next_prune = 0.0
        self._lock = threading.Lock()
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"DatabaseReplayStore supports PostgreSQL and SQLite, not {engine.dialect.name}"
            )

    def create(self) -> None:
        """Create the table if it is missing (several processes may do it at once)."""
        try:
            _metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:  # another process created it at the same moment
            _metadata.create_all(self.engine, checkfirst=True)

    def claim(self, webhook_id: str, expires_at: float, *, now: float | None = None) -> bool:
        current = time.time() if now is None else now
        self._maybe_prune(current)
        with self.engine.begin() as conn:
            # An expired claim of this id no longer counts: drop it, then claim.
            conn.execute(
                sa.delete(webhook_ids).where(
                    webhook_ids.c.webhook_id == webhook_id, webhook_ids.c.expires_at < current
                )
            )
            values = {"webhook_id": webhook_id, "expires_at": expires_at}
            insert = (
                postgresql.insert(webhook_ids)
                if self.engine.dialect.name == "postgresql"
                else sqlite.insert(webhook_ids)
            )
            inserted = conn.execute(
                insert.values(values)
                .on_conflict_do_nothing(index_elements=[webhook_ids.c.webhook_id])
                .returning(webhook_ids.c.webhook_id)  # a row back: this claim won
            )
            return inserted.first() is not None

    def release(self, webhook_id: str) -> None:
        """Forget ``webhook_id``'s claim: its next delivery is taken, not a replay."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(webhook_ids).where(webhook_ids.c.webhook_id == webhook_id))

    def prune(self, *, now: float | None = None, limit: int | None = None) -> int:
        """Delete up to ``limit`` (default ``prune_batch``) expired ids; how many went."""
        current = time.time() if now is None else now
        expired = (
            sa.select(webhook_ids.c.webhook_id)
            .where(webhook_ids.c.expires_at < current)
            .order_by(webhook_ids.c.expires_at)
            .limit(limit or self.prune_batch)
            # PostgreSQL: concurrent prunes skip each other's rows instead of deadlocking
            # (SQLite serializes writers and ignores this).
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            deleted = conn.execute(
                sa.delete(webhook_ids).where(
                    webhook_ids.c.webhook_id.in_(expired.scalar_subquery())
                )
            )
            return int(deleted.rowcount or 0)

    def _maybe_prune(self, now: float) -> None:
        with self._lock:
            if now < self._next_prune:
                return
            self._next_prune = now + self.prune_interval
        try:
            self.prune(now=now)
        except sa.exc.DBAPIError as exc:  # best effort: the next window tries again
            logger.warning("pruning expired webhook ids failed: %s", type(exc).__name__)

    def __len__(self) -> int:
        """How many ids are recorded (expired ones included until pruned)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(webhook_ids)).scalar_one()
            )
