"""What readiness reports: live workers, and the state a run shows to API callers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .._durable import DurableGraph


def public_state(state: Any) -> Any:
    from masquerade._redact import redact_mapping

    return redact_mapping(state)


def live_workers(engine: sa.Engine, durable: DurableGraph[Any]) -> int | str:
    """The number of live workers (Postgres); ``"embedded"`` with an in-process one."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
        if durable.worker:
            return "embedded" if durable.embedded else count_alive(conn, durable)
        if durable.embedded:
            return "not tracked (SQLite)"
        return count_alive(conn, durable)


def count_alive(conn: sa.Connection, durable: DurableGraph[Any]) -> int:
    import time

    from .._executors import executors

    cutoff = time.time() - durable.heartbeat_timeout
    try:
        row = conn.execute(
            sa.select(sa.func.count()).where(
                executors.c.state == "alive", executors.c.heartbeat_at >= cutoff
            )
        ).first()
    except sa.exc.DBAPIError:  # no worker ever started: the table does not exist yet
        return 0
    return int(row[0]) if row is not None else 0
