"""The ``dbos`` plugin: checkpoints provider sessions of durable runs.

Inside a durable run (see :class:`~masquerade_dbos.DurableGraph`), an AvatarNode's
provider session id is checkpointed the moment the provider has created it, before the
session is ready. When the node runs again after its worker died, the session is not
created a second time: the provider's ``resume(provider_session_id, request)`` re-attaches
to it (or collects its result when the call already ended). A provider without
``resume`` fails the node with :class:`~masquerade_dbos.WorkerLost`; the node's retry
policy decides whether a new call is placed.

Outside durable runs this plugin does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from masquerade import ProviderSession, SessionRequest, hookimpl
from masquerade.graph import current_run

from ._context import NodeExecution, current_execution
from ._errors import WorkerLost

__all__ = ["masquerade_session_create", "masquerade_register_commands"]

logger = logging.getLogger("masquerade.dbos")


@hookimpl(wrapper=True)
def masquerade_session_create(
    request: SessionRequest,
) -> Generator[None, Any, Awaitable[ProviderSession] | None]:
    inner: Awaitable[ProviderSession] | None = yield
    execution = current_execution()
    if execution is None or inner is None:
        return inner
    return _checkpointed_create(execution, request, inner)


async def _checkpointed_create(
    execution: NodeExecution, request: SessionRequest, inner: Awaitable[ProviderSession]
) -> ProviderSession:
    from dbos import DBOS  # imported here: loading the plugin must stay cheap

    saved = await DBOS.get_event_async(execution.workflow_id, execution.session_key, 0)
    if saved is None:
        handle = await inner
        await DBOS.set_event_async(
            execution.session_key,
            {"provider": request.provider, "id": handle.id, "created_at": time.time()},
        )
        _pump_offers(execution, request, handle)
        return handle
    close = getattr(inner, "close", None)
    if close is not None:
        close()  # the create call is never made
    session_id = str(saved["id"])
    run = current_run()
    provider = run.host.get_provider(request.provider) if run is not None else None
    resume = getattr(provider, "resume", None)
    if resume is None:
        raise WorkerLost(
            f"the {request.provider} session {session_id} of node {execution.node!r} was "
            "running on a worker that is gone, and the provider cannot re-attach to it",
            hint="no second call was placed; give the node a RetryPolicy to place one",
        )
    logger.warning(
        "run %s: re-attaching node %s to its %s session %s",
        execution.workflow_id,
        execution.node,
        request.provider,
        session_id,
    )
    try:
        resumed: ProviderSession = await resume(session_id, request)
    except NotImplementedError as exc:  # this kind of session cannot be re-attached
        raise WorkerLost(
            f"the {request.provider} session {session_id} of node {execution.node!r} was "
            f"running on a worker that is gone, and the provider cannot re-attach to it: {exc}",
            hint="no second call was placed; give the node a RetryPolicy to place one",
        ) from None
    return resumed


def _pump_offers(execution: NodeExecution, request: SessionRequest, handle: Any) -> None:
    """A browser-frontend session (``answer_offer``) of a durable run answers the SDP
    offer its frontend posts to the call service (``POST /v1/runs/{id}/sdp``)."""
    import asyncio

    from ._runlog import answer_offers, run_logs

    log = run_logs.get(execution.workflow_id)
    if log is None or not callable(getattr(handle, "answer_offer", None)):
        return
    timeout = float(request.provisioning_timeout or 120.0)
    task = asyncio.get_running_loop().create_task(
        answer_offers(log, execution.workflow_id, handle, timeout=timeout)
    )
    _pumps.add(task)
    task.add_done_callback(_pumps.discard)


_pumps: set[Any] = set()  # the offer pumps running (a reference keeps each alive)


@hookimpl
def masquerade_register_commands(register: Callable[..., None]) -> None:
    from . import _cli

    register("worker", _cli.add_arguments, _cli.run, help=_cli.HELP)
    from .service import _cli as _serve

    register("serve", _serve.add_arguments, _serve.run, help=_serve.HELP)
