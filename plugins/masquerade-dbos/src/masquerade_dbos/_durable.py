"""``DurableGraph``: submit graph runs to a durable queue and run them on workers.

::

    from masquerade_dbos import DurableGraph

    durable = DurableGraph(graph)                       # SQLite under ./.masquerade/
    async with durable:                                 # launches DBOS; works the queue
        run = await durable.submit(State(customer="Ada"), idempotency_key="order-A1001")
        final = await run.result()

With ``database_url="postgresql://..."`` (or ``MASQUERADE_DATABASE_URL``), any number of
processes share the queue: ``worker=True`` processes run graph runs, ``worker=False``
processes only submit and follow them.

DBOS runs workflows on asyncio only: a ``DurableGraph`` used under trio raises
:class:`~masquerade_dbos.NotAsyncio` at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
import signal
import socket
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio
from opentelemetry import propagate, trace
from pydantic import BaseModel

import dbos
from dbos import DBOS, DBOSConfig
from masquerade import ConfigurationError, Graph, Host

from ._errors import NotAsyncio, RunFailed
from ._executors import ExecutorTable
from ._runlog import CREDENTIALS_KEY, RunLog
from ._workflow import WORKFLOW_NAME, register_graph, running_scopes, unregister_graph

__all__ = [
    "DurableGraph",
    "RunHandle",
    "RunInfo",
    "DEFAULT_DATABASE",
    "resolve_database_url",
]

logger = logging.getLogger("masquerade.dbos")

StateT = TypeVar("StateT", bound=BaseModel)

#: Where the embedded (SQLite) default keeps its database, relative to the working dir.
DEFAULT_DATABASE = Path(".masquerade") / "runs.sqlite"
#: The application version every masquerade worker and submitter agrees on.
APP_VERSION = "masquerade-dbos-1"
DEFAULT_HEARTBEAT_TIMEOUT = 15.0

_active: DurableGraph[Any] | None = None


def resolve_database_url(database_url: str | None) -> str:
    """The flag, else ``MASQUERADE_DATABASE_URL``, else SQLite in ``./.masquerade/``."""
    url = database_url or os.environ.get("MASQUERADE_DATABASE_URL")
    if url:
        if not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
            raise ConfigurationError(
                "the database URL must start with postgresql:// or sqlite:///",
                hint="e.g. postgresql://user@db.internal:5432/masquerade",
            )
        return url
    path = DEFAULT_DATABASE.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _dbos_log_level() -> str:
    level = logging.getLogger("masquerade").level
    return logging.getLevelName(level) if level else "WARNING"


def _require_asyncio(what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise NotAsyncio(
            f"{what} needs asyncio: durable runs are executed by DBOS, which supports "
            "asyncio only (not trio)",
            hint="run it with asyncio.run(...) or anyio.run(..., backend='asyncio')",
        ) from None


def _queue_name(graph: Graph[Any]) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", graph.name.lower()).strip("-") or "graph"
    return f"masquerade-{slug}"[:120]


def run_id_for(idempotency_key: str | None) -> str:
    """The run id: derived from the idempotency key (the same key, the same run)."""
    if idempotency_key is None:
        return f"run_{secrets.token_hex(12)}"
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"run_{digest}"


class RunHandle(Generic[StateT]):
    """A submitted run: its ``id``, its status, its final state."""

    def __init__(self, durable: DurableGraph[StateT], run_id: str) -> None:
        self.durable = durable
        self.id = run_id

    def __repr__(self) -> str:
        return f"<RunHandle {self.id}>"

    async def status(self) -> str:
        """``ENQUEUED``, ``PENDING`` (running), ``SUCCESS``, ``ERROR``, ``CANCELLED``..."""
        status = await DBOS.get_workflow_status_async(self.id)
        return "UNKNOWN" if status is None else str(status.status)

    async def executor(self) -> str | None:
        """The id of the worker that runs (or ran) it."""
        status = await DBOS.get_workflow_status_async(self.id)
        return None if status is None else status.executor_id

    async def result(self) -> StateT:
        """Wait for the run to end; its final state, or :class:`RunFailed`."""
        handle: Any = await DBOS.retrieve_workflow_async(self.id)
        try:
            data = await handle.get_result()
        except RunFailed:
            raise
        except Exception as exc:
            raise RunFailed(f"run {self.id} failed: {type(exc).__name__}: {exc}") from exc
        return self.durable.graph.state_model.model_validate(data)

    async def cancel(self) -> None:
        """Cancel the run; the worker running it ends a live call through its cancel path."""
        await DBOS.cancel_workflow_async(self.id)
        scope = running_scopes.get(self.id)
        if scope is not None:  # running in this process: no need to wait for the watcher
            scope.cancel()

    async def info(self) -> RunInfo | None:
        """The run's status, state and error (``None`` for an unknown run id)."""
        found = await DBOS.list_workflows_async(workflow_ids=[self.id])
        if not found:
            return None
        return RunInfo.from_status(found[0])

    async def credentials(self, wait: float = 0.0) -> dict[str, Any] | None:
        """The join credentials of the run's READY session, waiting up to ``wait`` seconds.

        ``{"node", "session_id", "provider", "kind", "credentials": {...}}``, or
        ``{"node", "session_id", "ended": True}`` once that session has ended; ``None``
        when no session was ready within ``wait``. The values are secrets meant for the
        run's frontend only: never log them.
        """
        value = await DBOS.get_event_async(self.id, CREDENTIALS_KEY, max(wait, 0.0))
        return value if isinstance(value, dict) else None

    async def events(self, after: int = 0, limit: int = 500) -> list[tuple[int, str]]:
        """Recorded events with an id above ``after``: ``(id, JSON text)``, oldest first."""
        log = self.durable.run_log
        if log is None:
            return []
        return await anyio.to_thread.run_sync(log.read, self.id, after, limit)


#: DBOS statuses -> the status names of the call service.
STATUSES = {
    "ENQUEUED": "queued",
    "PENDING": "running",
    "SUCCESS": "succeeded",
    "ERROR": "failed",
    "CANCELLED": "cancelled",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "failed",
}
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class RunInfo:
    """A run as the call service shows it: ``status``, ``state`` (the initial state until
    the run succeeds, then the final one) and ``error`` (a message, when it failed)."""

    __slots__ = ("error", "executor_id", "id", "state", "status")

    def __init__(
        self,
        run_id: str,
        status: str,
        state: Any,
        error: str | None,
        executor_id: str | None = None,
    ) -> None:
        self.id = run_id
        self.status = status
        self.state = state
        self.error = error
        self.executor_id = executor_id

    def __repr__(self) -> str:
        return f"<RunInfo {self.id} {self.status}>"

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_status(cls, found: Any) -> RunInfo:
        status = STATUSES.get(str(found.status), "running")
        state: Any = None
        if status == "succeeded":
            state = found.output
        else:
            inputs = found.input or {}
            args = inputs.get("args") if isinstance(inputs, dict) else None
            if args and len(args) > 1:
                state = args[1]
        error = None
        if status == "failed" and found.error is not None:
            error = str(getattr(found.error, "message", None) or found.error)
        return cls(found.workflow_id, status, state, error, found.executor_id)


class DurableGraph(Generic[StateT]):
    """Durable runs of ``graph``: a DBOS workflow per run, a checkpointed step per node.

    Args:
        graph: the :class:`~masquerade.Graph` to run.
        database_url: ``postgresql://...`` to share runs between processes and machines;
            default ``MASQUERADE_DATABASE_URL``, else SQLite under ``./.masquerade/``.
        worker: run graph runs from the queue in this process (``False``: only submit
            and follow runs).
        capacity: at most this many runs at once per worker (so at most this many live
            sessions when each run has one AvatarNode). Runs beyond it wait in the queue.
        provider_limits: at most this many concurrent runs across all workers for a
            graph that uses the provider, e.g. ``{"runway": 5}`` for an account's
            concurrency limit. Runs beyond it wait in the queue instead of failing.
        executor_id: this process's id. A worker restarted with the same id recovers its
            own runs at once; by default SQLite uses ``"local"`` (one process) and Postgres a
            fresh id per process (its runs are recovered by other workers).
        heartbeat_timeout: seconds without a heartbeat after which a worker is declared
            dead and its runs are recovered by a live worker (Postgres only).
        polling_interval: seconds between two looks at the queue.
        host: the :class:`~masquerade.Host` runs use (default: a fresh ``Host()``).
        tracer_provider: where the submission's span goes (default: the global one); its
            trace context is stored with the run, so the run's spans join its trace.
        app_name: the DBOS application name (the same for all workers of a deployment).
    """

    def __init__(
        self,
        graph: Graph[StateT],
        *,
        database_url: str | None = None,
        worker: bool = True,
        capacity: int = 10,
        provider_limits: Mapping[str, int] | None = None,
        executor_id: str | None = None,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        polling_interval: float = 0.5,
        host: Host | None = None,
        app_name: str = "masquerade",
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        if capacity < 1:
            raise ConfigurationError(f"capacity must be at least 1, got {capacity}")
        if heartbeat_timeout <= 0:
            raise ConfigurationError("heartbeat_timeout must be positive")
        graph.validate()
        self.graph = graph
        self.database_url = resolve_database_url(database_url)
        self.embedded = self.database_url.startswith("sqlite")
        self.worker = worker
        self.capacity = capacity
        self.provider_limits = dict(provider_limits or {})
        for name, limit in self.provider_limits.items():
            if limit < 1:
                raise ConfigurationError(f"the limit of provider {name!r} must be at least 1")
        if executor_id is None:
            executor_id = (
                "local"
                if self.embedded
                else f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
            )
        self.executor_id = executor_id
        self.heartbeat_timeout = heartbeat_timeout
        self.polling_interval = polling_interval
        self.app_name = app_name
        self.queue_name = _queue_name(graph)
        self.graph_key = graph.name
        self._host = host
        provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = provider.get_tracer("masquerade.dbos")
        self._entered_host: Host | None = None
        self._dbos: DBOS | None = None
        self._table: ExecutorTable | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._stopping = False
        #: The events of runs (see :class:`~masquerade_dbos._runlog.RunLog`).
        self.run_log: RunLog | None = None

    def __repr__(self) -> str:
        kind = "sqlite" if self.embedded else "postgres"
        return f"<DurableGraph {self.graph.name!r} {kind} executor={self.executor_id!r}>"

    @property
    def global_limit(self) -> int | None:
        limits = self.provider_limits
        used = [limits[p] for p in self.graph.providers if p in limits]
        return min(used) if used else None

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> DurableGraph[StateT]:
        global _active
        _require_asyncio("DurableGraph")
        if _active is not None:
            raise ConfigurationError(
                "another DurableGraph is already running in this process",
                hint="DBOS keeps one runtime per process: leave the first one's block first",
            )
        _active = self
        try:
            await self._start()
        except BaseException:
            _active = None
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _active
        try:
            await self._stop()
        finally:
            _active = None

    async def _start(self) -> None:
        host = self._host if self._host is not None else Host()
        await host.__aenter__()
        self._entered_host = host
        self.run_log = RunLog(self.database_url)
        await anyio.to_thread.run_sync(self.run_log.create)
        register_graph(self.graph_key, self.graph, host, self.run_log)
        if self.worker and not self.embedded:
            self._table = ExecutorTable(self.database_url)
            await anyio.to_thread.run_sync(self._table.create)
            await anyio.to_thread.run_sync(self._table.register, self.executor_id)
        config: DBOSConfig = {
            "name": self.app_name,
            "system_database_url": self.database_url,
            "application_version": APP_VERSION,
            "executor_id": self.executor_id,
            # DBOS logs at INFO by default; follow masquerade's own level when it is set.
            "log_level": _dbos_log_level(),
        }
        if self.embedded:
            # SQLite has no LISTEN/NOTIFY: waiters of workflow events (the join credentials
            # a frontend long-polls for) are woken by polling, every second by default.
            config["notification_listener_polling_interval_sec"] = 0.1
        self._dbos = DBOS(config=config)
        if not self.worker:
            DBOS.listen_queues([])
        # Launched from the event loop's thread: DBOS runs queued workflows on this loop.
        DBOS.launch()
        await DBOS.register_queue_async(
            self.queue_name,
            # DBOS wants the per-worker limit within the global one.
            worker_concurrency=min(self.capacity, self.global_limit or self.capacity),
            global_concurrency=self.global_limit,
            polling_interval_sec=self.polling_interval,
            on_conflict="always_update" if self.worker else "never_update",
        )
        if self._table is not None or self.worker:
            self._tg = anyio.create_task_group()
            await self._tg.__aenter__()
        if self._tg is not None and self._table is not None:
            # The first beat now: from here on, a crash is noticed within the timeout
            # (the registration's startup grace only covers the launch).
            await anyio.to_thread.run_sync(self._table.beat, self.executor_id)
            self._tg.start_soon(self._heartbeats, name="masquerade-dbos heartbeats")
        if self._tg is not None and self.worker:
            self._tg.start_soon(self._watch_cancellations, name="masquerade-dbos cancellations")

    async def _stop(self) -> None:
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            self._tg = None
        if self._dbos is not None:
            self._dbos = None
            await _cancel_workflow_tasks()
            DBOS.destroy(destroy_registry=False)
        if self._table is not None:
            table, self._table = self._table, None
            if not self._stopping:
                await anyio.to_thread.run_sync(table.stop, self.executor_id)
            table.close()
        unregister_graph(self.graph_key)
        if self.run_log is not None:
            self.run_log.close()
            self.run_log = None
        if self._entered_host is not None:
            host, self._entered_host = self._entered_host, None
            await host.__aexit__(None, None, None)

    # ------------------------------------------------------------------ runs
    async def submit(
        self,
        state: StateT | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> RunHandle[StateT]:
        """Put a run on the queue; the same ``idempotency_key`` returns the same run."""
        _require_asyncio("DurableGraph.submit")
        if self._dbos is None:
            raise ConfigurationError(
                "the DurableGraph is not running", hint="use `async with durable:` first"
            )
        initial = self.graph.schema.coerce(state)
        run_id = run_id_for(idempotency_key)
        carrier: dict[str, str] = {}
        with self._tracer.start_as_current_span(
            "masquerade.submit_run",
            attributes={"masquerade.run.id": run_id, "masquerade.graph": self.graph.name},
        ):
            propagate.inject(carrier)
            await DBOS.enqueue_workflow_with_options_async(
                {
                    "workflow_name": WORKFLOW_NAME,
                    "queue_name": self.queue_name,
                    "workflow_id": run_id,
                    "app_version": APP_VERSION,
                },
                self.graph_key,
                initial.model_dump(mode="json"),
                carrier,
            )
        return RunHandle(self, run_id)

    def handle(self, run_id: str) -> RunHandle[StateT]:
        return RunHandle(self, run_id)

    async def run(
        self,
        state: StateT | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> StateT:
        """Submit a run and wait for its final state."""
        handle = await self.submit(state, idempotency_key=idempotency_key)
        return await handle.result()

    # ------------------------------------------------------------------ workers
    async def _heartbeats(self) -> None:
        interval = self.heartbeat_timeout / 3
        while True:
            await self._beat()
            await anyio.sleep(interval)

    async def _beat(self) -> None:
        """One heartbeat, then a look for dead workers (recovering their runs)."""
        table = self._table
        assert table is not None
        try:
            alive = await anyio.to_thread.run_sync(table.beat, self.executor_id)
        except Exception as exc:  # the database is unreachable: try again next beat
            logger.warning("heartbeat of worker %s failed: %s", self.executor_id, exc)
            return
        if not alive:
            logger.critical(
                "worker %s was declared dead by another worker (no heartbeat for %.1fs); "
                "its runs were handed over, so it stops now",
                self.executor_id,
                self.heartbeat_timeout,
            )
            os._exit(70)
        try:
            dead = await anyio.to_thread.run_sync(
                table.claim_dead, self.executor_id, self.heartbeat_timeout
            )
            if dead:
                await self.recover(dead)
        except Exception as exc:
            logger.warning("looking for dead workers failed: %s", exc)

    async def _watch_cancellations(self) -> None:
        """Cancel the task of a run of this worker that was cancelled from elsewhere."""
        interval = max(self.polling_interval, 0.05)
        while True:
            await anyio.sleep(interval)
            if not running_scopes:
                continue
            try:
                cancelled = await DBOS.list_workflows_async(
                    workflow_ids=list(running_scopes),
                    status="CANCELLED",
                    load_input=False,
                    load_output=False,
                )
            except Exception as exc:
                logger.warning("looking for cancelled runs failed: %s", exc)
                continue
            for found in cancelled:
                scope = running_scopes.get(found.workflow_id)
                if scope is not None:
                    logger.info("run %s was cancelled: stopping it", found.workflow_id)
                    scope.cancel()

    async def recover(self, executor_ids: list[str]) -> int:
        """Put the pending runs of ``executor_ids`` back on the queue (idempotent)."""
        handles = await anyio.to_thread.run_sync(DBOS._recover_pending_workflows, executor_ids)
        logger.warning(
            "worker(s) %s stopped sending heartbeats; %d pending run(s) recovered by %s",
            ", ".join(executor_ids),
            len(handles),
            self.executor_id,
        )
        return len(handles)

    async def active_runs(self) -> list[str]:
        dbos = self._dbos
        if dbos is None:
            return []
        return list(dbos._active_workflows_set.activeList())

    async def drain(self, timeout: float = 60.0) -> bool:
        """Stop taking runs, and wait up to ``timeout`` seconds for the running ones.

        Returns ``True`` when every run finished. Otherwise the runs still going are
        handed back: live workers recover them at their next heartbeat (a live call is
        re-attached, never placed twice).
        """
        dbos = self._dbos
        if dbos is None:
            return True
        for event in dbos.background_thread_stop_events:
            event.set()  # the queue threads stop dequeuing; running runs go on
        with anyio.move_on_after(timeout):
            while await self.active_runs():  # noqa: ASYNC110 - DBOS offers no event for it
                await anyio.sleep(0.1)
        remaining = await self.active_runs()
        if remaining and self._table is not None:
            logger.warning(
                "worker %s stops with %d run(s) unfinished; handing them back",
                self.executor_id,
                len(remaining),
            )
            self._stopping = True
            await anyio.to_thread.run_sync(self._table.hand_back, self.executor_id)
        return not remaining

    async def serve(self, *, drain_timeout: float = 60.0) -> None:
        """Work the queue until SIGTERM or SIGINT, then drain (see :meth:`drain`)."""
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                logger.warning(
                    "worker %s got %s: draining (up to %.0fs)",
                    self.executor_id,
                    signal.Signals(signum).name,
                    drain_timeout,
                )
                break
        await self.drain(drain_timeout)


async def _cancel_workflow_tasks() -> None:
    """Cancel the workflow tasks DBOS started on this loop (they stay PENDING, recoverable)."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current and _is_workflow_task(t)]
    for task in tasks:
        task.cancel()
    if tasks:
        with anyio.move_on_after(30):
            await asyncio.gather(*tasks, return_exceptions=True)


def _is_workflow_task(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None)
    return code is not None and code.co_filename.startswith(_DBOS_DIR)


_DBOS_DIR = os.path.dirname(dbos.__file__) + os.sep
