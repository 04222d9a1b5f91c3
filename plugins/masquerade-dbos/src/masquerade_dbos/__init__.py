"""Durable, distributed masquerade graph runs on DBOS (SQLite embedded, Postgres to scale).

::

    from masquerade_dbos import DurableGraph

    async with DurableGraph(graph, database_url="postgresql://...") as durable:
        run = await durable.submit(State(customer="Ada"), idempotency_key="order-A1001")
        final = await run.result()

A run is a DBOS workflow; each node's completed output is a checkpointed step; an
AvatarNode's provider session id is checkpointed at creation, so a recovered run
re-attaches to its live call instead of placing a second one. Workers
(``masquerade worker FILE[:GRAPH] --database-url URL``) send heartbeats; a live worker
recovers the runs of a dead one. Asyncio only (DBOS does not run on trio).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._context import NodeExecution, current_execution
from ._errors import DurableError, NotAsyncio, RunFailed, WorkerLost

if TYPE_CHECKING:
    from ._durable import DEFAULT_DATABASE, DurableGraph, RunHandle, RunInfo, resolve_database_url

# DBOS takes a second to import: loaded on first use, so that the plugin (which every
# Host loads) stays cheap.
_LAZY = {"DurableGraph", "RunHandle", "RunInfo", "resolve_database_url", "DEFAULT_DATABASE"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import _durable

        return getattr(_durable, name)
    raise AttributeError(f"module 'masquerade_dbos' has no attribute {name!r}")

__all__ = [
    "DurableGraph",
    "RunHandle",
    "RunInfo",
    "DurableError",
    "RunFailed",
    "WorkerLost",
    "NotAsyncio",
    "NodeExecution",
    "current_execution",
    "resolve_database_url",
    "DEFAULT_DATABASE",
]
