"""AvatarNode: a graph node whose run is one whole avatar session.

::

    concierge = AvatarNode(
        "runway",
        avatar="cooking-teacher",
        tools=[lookup_order, book_slot],
        personality=lambda state: f"You help {state.customer} with their orders.",
        on_ready=lambda credentials: send_to_browser(credentials.reveal()),
        output_key="call",
    )
    graph.add_node("concierge", concierge)

The node builds a :class:`~masquerade.SessionRequest` from its settings and the state,
runs the session through the host (``host.session(request)``), hands the frontend its
join credentials when the session is ready, and returns ``{output_key: SessionResult}``.

Inside :class:`~masquerade.Graph` it uses the run's host and streams the session's events
out of ``graph.stream()``. It is also a plain ``async`` callable ``state -> dict``, so it
is a node of LangGraph's ``StateGraph`` as it is; there it uses the ``host`` it was given
(or enters a fresh ``Host()`` for the call) and writes its events to LangGraph's
``custom`` stream mode.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from ..errors import CallFailed
from ..session import DEFAULT_MAX_DURATION, SessionRequest, SessionResult
from ._engine import current_run
from ._events import GraphEvent, NodeEvent

if TYPE_CHECKING:
    from ..events import JoinCredentials
    from ..host import Host
    from ..tools import Tool

__all__ = ["AvatarNode"]

T = TypeVar("T")
#: A value, or a function of the state that computes it (sync or async).
FromState: TypeAlias = T | Callable[[Any], T] | Callable[[Any], Awaitable[T]]
_Emit = Callable[[GraphEvent], Awaitable[None]]


async def _resolve(value: Any, state: Any) -> Any:
    if callable(value):
        value = value(state)
        if inspect.isawaitable(value):
            value = await value
    return value


class AvatarNode:
    """A node that runs one avatar session and puts its result into the state.

    Args:
        provider: the provider name (``"runway"``, ``"openai"``...).
        avatar: the avatar (Runway preset or custom avatar id), or a function of the state.
        tools: :class:`~masquerade.Tool` objects or plain functions the model may call.
        personality: the system prompt, or a function of the state that returns it
            (sync or async).
        start_script: the opening line, or a function of the state.
        max_duration: seconds the call may last (it then ends through its cancel path);
            300 by default, ``None`` for no bound.
        on_ready: called with the :class:`~masquerade.JoinCredentials` once the session is
            ready (sync or async): hand them to your frontend here. The call goes on
            meanwhile (the provider does not wait for the frontend); if ``on_ready``
            raises, the session ends through its cancel path and the node fails.
        output_key: the state field that receives the :class:`~masquerade.SessionResult`.
        model: the provider's model, when it has a choice.
        name: the agent's display name (defaults to the graph node's name).
        options: provider-specific options (Runway ``consume=True``, OpenAI ``voice``...).
        provisioning_timeout: seconds to wait for the session to become ready.
        metadata: free-form data for the request, or a function of the state.
        host: the host to use outside :class:`~masquerade.Graph` (inside a graph, the
            run's host is used).
        continue_on_failure: when the call ends ``failed``, still write its result and
            let the next node run. By default a failed call fails the node (and so the
            run) with :class:`~masquerade.CallFailed`, which says why.
    """

    def __init__(
        self,
        provider: str,
        avatar: FromState[str | None] = None,
        *,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        personality: FromState[str | None] = None,
        start_script: FromState[str | None] = None,
        max_duration: float | None = DEFAULT_MAX_DURATION,
        on_ready: Callable[[JoinCredentials], Any] | None = None,
        output_key: str = "session",
        model: str | None = None,
        name: str | None = None,
        options: Mapping[str, Any] | None = None,
        provisioning_timeout: float | None = None,
        metadata: FromState[Mapping[str, Any] | None] = None,
        host: Host | None = None,
        continue_on_failure: bool = False,
    ) -> None:
        if not output_key:
            from ..errors import ConfigurationError

            raise ConfigurationError(
                "AvatarNode needs an output_key", hint="e.g. AvatarNode(..., output_key='call')"
            )
        # Built once now, so a bad tool or duration fails where the node is defined.
        fixed: dict[str, Any] = {
            "provider": provider,
            "tools": tools,
            "max_duration": max_duration,
            "model": model,
            "name": name,
            "options": dict(options or {}),
        }
        if provisioning_timeout is not None:
            fixed["provisioning_timeout"] = provisioning_timeout
        self.template = SessionRequest(**fixed)
        self.provider = provider
        self.avatar = avatar
        self.personality = personality
        self.start_script = start_script
        self.metadata = metadata
        self.on_ready = on_ready
        self.output_key = output_key
        self.host = host
        self.continue_on_failure = continue_on_failure

    # Read by Graph.add_node: what the node writes and which providers it needs.
    @property
    def output_keys(self) -> tuple[str, ...]:
        return (self.output_key,)

    @property
    def providers(self) -> tuple[str, ...]:
        return (self.provider,)

    @property
    def tools(self) -> tuple[Tool, ...]:
        return self.template.tools

    def __repr__(self) -> str:
        tools = ", ".join(t.name for t in self.template.tools)
        return (
            f"AvatarNode(provider={self.provider!r}, avatar={self.avatar!r}, tools=[{tools}], "
            f"output_key={self.output_key!r})"
        )

    async def build_request(self, state: Any, *, node: str | None = None) -> SessionRequest:
        """The :class:`~masquerade.SessionRequest` this node starts for ``state``."""
        update: dict[str, Any] = {
            "avatar": await _resolve(self.avatar, state),
            "personality": await _resolve(self.personality, state),
            "start_script": await _resolve(self.start_script, state),
        }
        metadata = await _resolve(self.metadata, state)
        if metadata:
            update["metadata"] = dict(metadata)
        if self.template.name is None and node is not None:
            update["name"] = node
        return SessionRequest.model_validate({**self.template.__dict__, **update})

    async def __call__(self, state: Any) -> dict[str, SessionResult]:
        """Run the session for ``state``; return ``{output_key: SessionResult}``."""
        context = current_run()
        if context is not None:
            request = await self.build_request(state, node=context.node)
            result = await self.run_session(
                context.host, request, node=context.node, emit=context.emit
            )
            return {self.output_key: result}
        node, emit = _langgraph_context()
        request = await self.build_request(state, node=node)
        async with AsyncExitStack() as stack:
            host = self.host
            if host is None:
                from ..host import Host

                host = Host()
            await stack.enter_async_context(host)
            result = await self.run_session(host, request, node=node or "avatar", emit=emit)
        return {self.output_key: result}

    async def run_session(
        self, host: Host, request: SessionRequest, *, node: str, emit: _Emit | None
    ) -> SessionResult:
        """Run one session on ``host``, calling ``on_ready`` and forwarding its events to
        ``emit`` (wrapped in :class:`~masquerade.NodeEvent`) while it runs."""
        available = host.providers
        if request.provider not in available:
            raise host.provider_not_found(request.provider)
        failure: Exception | None = None
        async with host.session(request) as session, session.events() as events:
            try:
                async for event in events:
                    if event.type == "ready" and self.on_ready is not None:
                        credentials = event.__dict__["credentials"]
                        if credentials is not None:
                            value = self.on_ready(credentials)
                            if inspect.isawaitable(value):
                                await value
                    if emit is not None:
                        await emit(NodeEvent(node=node, session_id=session.id, event=event))
            except Exception as exc:
                # Raised outside the block: leaving it ends the session through its cancel
                # path, and the session's task group would wrap the error in a group.
                failure = exc
        if failure is not None:
            raise failure
        assert session.result is not None
        if session.result.outcome == "failed" and not self.continue_on_failure:
            raise CallFailed(session.result)
        return session.result


def _langgraph_context() -> tuple[str | None, _Emit | None]:
    """Inside a LangGraph run: the node's name and a writer to its ``custom`` stream."""
    try:
        from langgraph.config import get_config, get_stream_writer
    except ImportError:
        return None, None
    try:
        config = get_config()
        writer = get_stream_writer()
    except Exception:  # not inside a LangGraph run
        return None, None
    node = (config.get("metadata") or {}).get("langgraph_node")

    async def emit(event: GraphEvent) -> None:
        writer(event)

    return (str(node) if node is not None else None), emit
