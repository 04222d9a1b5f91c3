"""The durable workflow of a graph run, and the checkpointed step of each node.

A run is one DBOS workflow (``masquerade.graph_run``) that runs the graph's ordinary
engine; every node of the graph is replaced by a wrapper that runs the node as a DBOS
step. A step's output (the node's update, as JSON) is checkpointed when it completes, so
a recovered run replays completed nodes from their checkpoints and runs the first node
that had not completed. Routers run in the workflow itself (they must be deterministic
functions of the state, as they are for any replay).

Each attempt of a node is its own step, so a node's retry policy counts attempts across
crashes, and the delay between attempts is a durable sleep.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from opentelemetry import context as otel_context
from opentelemetry import propagate

from dbos import DBOS
from masquerade import ConfigurationError, Graph, SessionResult
from masquerade.graph import current_run
from masquerade.graph._engine import _current_run

from ._codec import decode_update, encode_update
from ._context import NodeExecution, current_execution, execution_var
from ._errors import RunFailed, WorkerLost
from ._runlog import EventRecorder, RunLog, publishing_credentials, run_logs

if TYPE_CHECKING:
    from masquerade import Host

__all__ = [
    "WORKFLOW_NAME",
    "NodeExecution",
    "current_execution",
    "graph_run",
    "register_graph",
    "unregister_graph",
    "durable_copy",
    "running_scopes",
]

logger = logging.getLogger("masquerade.dbos")

#: The DBOS workflow name every graph run is enqueued under.
WORKFLOW_NAME = "masquerade.graph_run"


@dataclass
class _Registered:
    graph: Graph[Any]
    durable: Graph[Any]
    host: Host
    log: RunLog | None = None


_registry: dict[str, _Registered] = {}

#: The runs executing in this process, by run id: cancelling the scope cancels the run.
running_scopes: dict[str, anyio.CancelScope] = {}


def register_graph(key: str, graph: Graph[Any], host: Host, log: RunLog | None = None) -> None:
    """Make ``graph`` runnable by this process under ``key`` (its runs use ``host``; their
    events are recorded in ``log``)."""
    _registry[key] = _Registered(graph, durable_copy(graph), host, log)


def unregister_graph(key: str) -> None:
    _registry.pop(key, None)


class _NodeStep:
    """Runs one node of a durable run: each attempt a checkpointed DBOS step."""

    def __init__(self, graph: Graph[Any], name: str, fn: Callable[[Any], Any], is_async: bool):
        self.graph = graph
        self.name = name
        self.fn = fn
        self.is_async = is_async
        self.retry = _retry_policy(graph, name, fn)
        # The exception of an attempt that failed in this process, so the run reports the
        # real error (with its traceback) when it did not have to be replayed.
        self._live: dict[tuple[str, int, int], BaseException] = {}

    async def __call__(self, state: Any) -> dict[str, Any]:
        run = current_run()
        step = run.step if run is not None else 0
        workflow_id = DBOS.workflow_id or ""
        attempt = 0
        while True:
            attempt += 1
            execution = NodeExecution(workflow_id, self.name, step, attempt)
            outcome: dict[str, Any] = await DBOS.run_step_async(
                {"name": f"node:{self.name}"}, self._attempt, execution, state
            )
            if "update" in outcome:
                return decode_update(self.graph.state_model, outcome["update"])
            live = self._live.pop((workflow_id, step, attempt), None)
            policy = self.retry
            if outcome.get("retry") and policy is not None and attempt < policy.max_attempts:
                delay = float(policy.delay(attempt))
                logger.info(
                    "node %s of run %s failed (%s); attempt %d of %d in %.2fs",
                    self.name, workflow_id, outcome.get("error"), attempt + 1,
                    policy.max_attempts, delay,
                )  # fmt: skip
                if delay > 0:
                    await DBOS.sleep_async(delay)
                continue
            if live is not None:
                raise live
            if outcome.get("type") == "WorkerLost":
                raise WorkerLost(str(outcome.get("error")))
            raise RunFailed(
                f"node {self.name!r} failed: {outcome.get('error')}",
                hint="the error was recorded by an earlier worker; see its logs",
            )

    async def _attempt(self, execution: NodeExecution, state: Any) -> dict[str, Any]:
        token = execution_var.set(execution)
        run = current_run()
        # Inside the step: a READY session's credentials become a workflow event.
        run_token = (
            _current_run.set(dataclasses.replace(run, emit=publishing_credentials(run.emit)))
            if run is not None
            else None
        )
        try:
            given = self.graph.schema.copy_for_node(state)
            if self.is_async:
                output = await self.fn(given)
            else:
                output = await anyio.to_thread.run_sync(self.fn, given, abandon_on_cancel=True)
                if inspect.isawaitable(output):
                    output = await output
            update = self.graph.schema.normalize(self.name, output, state)
            lost = _lost_session(update)
            if lost is not None:
                raise WorkerLost(
                    lost.failure
                    or f"the {lost.provider} session of node {self.name!r} was lost with its "
                    "worker and cannot be re-attached",
                    hint="no second call was placed; give the node a RetryPolicy to place one",
                )
            return {"update": encode_update(self.graph.state_model, update)}
        except Exception as exc:
            lost_call = _lost_session({"call": getattr(exc, "result", None)})
            if lost_call is not None:  # an AvatarNode that fails the run on a failed call
                exc = WorkerLost(
                    lost_call.failure or "the session was lost with its worker",
                    hint="no second call was placed; give the node a RetryPolicy to place one",
                )
            policy = self.retry
            self._live[(execution.workflow_id, execution.step, execution.attempt)] = exc
            return {
                "error": f"{type(exc).__name__}: {exc}",
                "type": type(exc).__name__,
                "retry": bool(policy is not None and policy.should_retry(exc)),
            }
        finally:
            if run_token is not None:
                _current_run.reset(run_token)
            execution_var.reset(token)


def _lost_session(update: dict[str, Any]) -> SessionResult | None:
    for value in update.values():
        if isinstance(value, SessionResult) and value.failure_code == WorkerLost.failure_code:
            return value
    return None


def _retry_policy(graph: Graph[Any], name: str, fn: Any) -> Any:
    """The node's retry policy, if the graph (or the node object) declares one."""
    spec = graph.nodes[name]
    policy = getattr(spec, "retry", None)
    if policy is None:
        policy = getattr(fn, "retry", None)
    if policy is None or not hasattr(policy, "max_attempts") or not hasattr(policy, "delay"):
        return None
    return policy


def durable_copy(graph: Graph[Any]) -> Graph[Any]:
    """A copy of ``graph`` whose nodes run as checkpointed steps (same edges, same state)."""
    durable = copy.copy(graph)
    nodes = {}
    for name, spec in graph.nodes.items():
        changes: dict[str, Any] = {
            "fn": _NodeStep(graph, name, spec.fn, spec.is_async),
            "is_async": True,
        }
        if hasattr(spec, "retry"):
            changes["retry"] = None  # the step wrapper retries, durably
        nodes[name] = dataclasses.replace(spec, **changes)
    durable.nodes = nodes
    return durable


@DBOS.workflow(name=WORKFLOW_NAME)
async def graph_run(graph_key: str, state: dict[str, Any], carrier: dict[str, str]) -> Any:
    """One graph run. ``carrier`` holds the W3C trace context of the submission."""
    registered = _registry.get(graph_key)
    if registered is None:
        raise ConfigurationError(
            f"this worker does not run the graph {graph_key!r} (it runs: "
            f"{', '.join(_registry) or 'none'})",
            hint="start workers with the same FILE:GRAPH the runs are submitted for",
        )
    token = otel_context.attach(propagate.extract(carrier))
    run_id = DBOS.workflow_id or ""
    recorder = EventRecorder(registered.log, run_id) if registered.log is not None else None
    final: Any = None
    try:
        async with anyio.create_task_group() as tg:
            if recorder is not None:
                tg.start_soon(recorder.writer)
            with anyio.CancelScope() as scope:
                running_scopes[run_id] = scope
                if registered.log is not None:
                    run_logs[run_id] = registered.log
                final = await registered.durable.run(
                    state, host=registered.host, on_event=recorder or _ignore
                )
            if recorder is not None:
                await recorder.close()
    except Exception as exc:
        failure = _as_run_failed(_single(exc))
        if recorder is not None:
            recorder.add(_error_event(_single(exc), failure))
            await recorder.close()
        raise failure from None
    finally:
        running_scopes.pop(run_id, None)
        run_logs.pop(run_id, None)
        otel_context.detach(token)
    if final is None:  # cancelled through DBOS: the status already says so
        if recorder is not None:
            recorder.add({"type": "graph.cancelled"})
            await recorder.close()
        raise RunFailed(f"run {run_id} was cancelled")
    return final.model_dump(mode="json")


def _ignore(event: Any) -> None:
    return None


def _single(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _error_event(exc: BaseException, failure: RunFailed) -> dict[str, Any]:
    """The ``graph.error`` object ``masquerade run --json`` prints for a failed run."""
    return {
        "type": "graph.error",
        "error": type(exc).__name__,
        "message": failure.message,
        "hint": failure.hint,
        "node": getattr(exc, "node", None),
    }


def _as_run_failed(exc: BaseException) -> RunFailed:
    message = getattr(exc, "message", None) or str(exc)
    hint = getattr(exc, "hint", None)
    failed = RunFailed(f"{message}", hint=hint)
    logger.warning("graph run %s failed: %s", DBOS.workflow_id, message)
    return failed

