"""The session's runtime: the one small interface a :class:`~masquerade.Session` talks to.

A session never imports the host. It is given a :class:`SessionRuntime` when it is built
(:class:`~masquerade.Host` is the one every user gets) and reaches plugins only through
it. Data flows one way: the provider feeds events into the session, the session hands
them to the runtime's observers and to its subscribers, and its result goes back to
whoever started it (a graph node, a script).

::

    provider --emit(event)--> Session --event_observers / isolate--> plugins
                                      --invoke_tool(call)----------> tool chain
                                      --notify_ended(result)-------> plugins

Another runtime (a durable worker, a test harness) can run sessions by offering the same
members; nothing in :mod:`masquerade.session` depends on more than this page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    from ._deadlines import Deadlines
    from .events import ToolCall, ToolResult
    from .poller import Poller
    from .provider import ProviderSession
    from .session import Session, SessionRequest, SessionResult
    from .tools import Tool

__all__ = ["IGNORES", "PASSES_THROUGH", "SessionRuntime", "Observer", "isolated"]

logger = logging.getLogger("masquerade.host")

#: One ``masquerade_session_event`` implementation, ready to call on the hot path:
#: (plugin name, function, the argument names it asked for, in order).
Observer: TypeAlias = tuple[str, Callable[..., Any], tuple[str, ...]]

#: The attribute an observer's function may carry: a frozenset of event types it returns
#: on at once without doing anything. The session then does not call it for those types
#: (the built-in logging and tracing observers skip audio and text deltas this way).
IGNORES = "masquerade_ignores"

#: The attribute a ``wrapper=True`` ``masquerade_tool_invoke`` implementation may carry:
#: a function of the session (for a method, of its object and the session) that is true
#: when the wrapper hands that session's calls through unchanged. While every wrapper of
#: the chain says so and the built-in invocation is its only implementation, the host
#: calls the built-in directly (the built-in tracing plugin passes through the calls of
#: sessions it does not trace this way).
PASSES_THROUGH = "masquerade_passes_through"


class SessionRuntime(Protocol):
    """What a running :class:`~masquerade.Session` needs from the host that runs it.

    :class:`~masquerade.Host` implements it. Every member is called from the session's own
    task; none may block the event loop.
    """

    @property
    def deadlines(self) -> Deadlines:
        """The host's one timer for every session's bounds (``max_duration``, the
        provisioning deadline; :mod:`masquerade._deadlines`): ``add(when, callback)`` and
        ``discard(entry)``."""
        ...

    @property
    def poller(self) -> Poller:
        """The shared :class:`~masquerade.Poller` that waits for provisioning sessions."""
        ...

    @property
    def tools(self) -> Mapping[str, Tool]:
        """Tools offered by plugins to every session, by name (merged into the session's)."""
        ...

    @property
    def event_observers(self) -> Sequence[Observer]:
        """*Notify event*: the ``masquerade_session_event`` implementations, in call order.

        The session calls each one inline for every event (the per-event hot path, so no
        extra call layer); an observer that raises is logged and skipped, and an
        awaitable it returns is awaited later, off the provider's path, through
        :meth:`isolate`. Read per event: a plugin registered meanwhile is seen at once.
        """
        ...

    @property
    def observers_by_kind(self) -> Mapping[str, Sequence[Observer]]:
        """Event type -> the :attr:`event_observers` that want it, in call order: those
        whose function does not list the type in its ``masquerade_ignores`` set (see
        :data:`IGNORES`). Filled on first use of each type and emptied when a plugin is
        registered or removed; the session indexes it per event."""
        ...

    def isolate(self, plugin_name: str, awaitable: Awaitable[Any]) -> Awaitable[None]:
        """*Isolate a call*: wrap a plugin's awaitable so that its failure is logged and
        swallowed, never raised into the session."""
        ...

    def tool_schema(self, tool: Tool, dialect: str) -> dict[str, Any]:
        """The tool's description in ``dialect`` (``"openai"``, ``"runway"``); providers
        reach it as ``session.host.tool_schema``."""
        ...

    async def create_provider_session(self, request: SessionRequest) -> ProviderSession:
        """Run the ``masquerade_session_create`` chain: the provider's live handle."""
        ...

    async def invoke_tool(
        self, call: ToolCall, session: Session, bound: float | None = None
    ) -> ToolResult:
        """*Invoke a tool*: run the ``masquerade_tool_invoke`` chain. Always returns one
        :class:`~masquerade.events.ToolResult` (failures become error results);
        cancellation propagates. With ``bound``, the whole chain (a hanging wrapper
        included) is cancelled after that many seconds and answered with
        :func:`masquerade.tools.late_answer`."""
        ...

    async def notify_ended(self, session: Session, result: SessionResult) -> None:
        """*Notify ended*: call every ``masquerade_session_ended`` implementation, each
        isolated from the others and each awaitable bounded by the request's
        ``hook_timeout`` (the session's end path relies on it to finish)."""
        ...


async def isolated(plugin_name: str, awaitable: Awaitable[Any]) -> None:
    """Await a plugin's awaitable; log and swallow what it raises (cancellation passes)."""
    try:
        await awaitable
    except Exception:
        logger.exception("async observer %s raised; it was skipped", plugin_name)
