"""Heartbeats of workers, and the recovery of a dead worker's runs by a live one.

DBOS recovers a restarted executor's own pending workflows. A worker that dies and is
not restarted is this module's job: every worker writes a heartbeat into the table
``masquerade_executors`` of the same database, and checks on each beat for workers whose
heartbeat is older than the timeout. The first live worker to mark such a worker
``dead`` (a conditional ``UPDATE``: exactly one wins) asks DBOS to recover its pending
runs; DBOS puts them back on their queue, where exactly one worker dequeues each.

A worker that finds itself marked dead (it stalled longer than the timeout, and its runs
were handed to others) stops at once instead of racing the worker that took them.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["ExecutorTable", "engine_url"]

logger = logging.getLogger("masquerade.dbos")

#: Seconds a starting worker counts as alive before its first heartbeat.
STARTUP_GRACE = 30.0

_metadata = sa.MetaData()
executors = sa.Table(
    "masquerade_executors",
    _metadata,
    sa.Column("executor_id", sa.String(255), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # alive | stopped | dead
    sa.Column("heartbeat_at", sa.Float, nullable=False),  # seconds since the epoch
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("recovered_by", sa.String(255), nullable=True),
    sa.Column("info", sa.String(1024), nullable=True),
)


def engine_url(url: str) -> str:
    """A SQLAlchemy URL for a DBOS system database URL (psycopg 3 for Postgres)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class ExecutorTable:
    """The heartbeat table of one database (blocking calls: run them in a thread)."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(engine_url(url), pool_size=2, max_overflow=2)
        self._insert: Any = (
            sqlite.insert if self.engine.dialect.name == "sqlite" else postgresql.insert
        )

    def create(self) -> None:
        try:
            _metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:
            # Two workers creating the table at once: one of them wins.
            _metadata.create_all(self.engine, checkfirst=True)

    def register(self, executor_id: str, grace: float = STARTUP_GRACE) -> None:
        """Mark ``executor_id`` alive (a restarted worker takes its row back).

        Its first heartbeat is dated ``grace`` seconds ahead: starting up (database
        migrations, a loaded machine) may take longer than the heartbeat timeout, and a
        worker must not be declared dead before its first beat.
        """
        now = time.time()
        beat = now + grace
        info = f"{socket.gethostname()} pid {os.getpid()}"
        statement = self._insert(executors).values(
            executor_id=executor_id, state="alive", heartbeat_at=beat, started_at=now, info=info
        )
        statement = statement.on_conflict_do_update(
            index_elements=[executors.c.executor_id],
            set_={"state": "alive", "heartbeat_at": beat, "started_at": now, "info": info,
                  "recovered_by": None},
        )  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(statement)

    def beat(self, executor_id: str) -> bool:
        """Refresh the heartbeat; ``False`` when another worker declared us dead."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(executors)
                .where(executors.c.executor_id == executor_id, executors.c.state == "alive")
                .values(heartbeat_at=time.time())
            )
        return bool(result.rowcount)

    def hand_back(self, executor_id: str) -> None:
        """Leave with runs still pending: let a live worker recover them at once."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(executors)
                .where(executors.c.executor_id == executor_id, executors.c.state == "alive")
                .values(heartbeat_at=0.0)
            )

    def stop(self, executor_id: str) -> None:
        """A clean exit: nothing of ours is pending."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(executors)
                .where(executors.c.executor_id == executor_id, executors.c.state == "alive")
                .values(state="stopped", heartbeat_at=time.time())
            )

    def claim_dead(self, me: str, timeout: float) -> list[str]:
        """Mark workers silent for ``timeout`` seconds dead; return those this call won."""
        cutoff = time.time() - timeout
        with self.engine.begin() as conn:
            silent = [
                row[0]
                for row in conn.execute(
                    sa.select(executors.c.executor_id).where(
                        executors.c.state == "alive",
                        executors.c.heartbeat_at < cutoff,
                        executors.c.executor_id != me,
                    )
                )
            ]
        won: list[str] = []
        for executor_id in silent:
            with self.engine.begin() as conn:
                result = conn.execute(
                    sa.update(executors)
                    .where(
                        executors.c.executor_id == executor_id,
                        executors.c.state == "alive",
                        executors.c.heartbeat_at < cutoff,
                    )
                    .values(state="dead", recovered_by=me)
                )
            if result.rowcount:
                won.append(executor_id)
        return won

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.select(executors))]

    def close(self) -> None:
        self.engine.dispose()
