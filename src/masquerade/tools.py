"""Tools: typed Python functions the model can call during a session.

::

    from masquerade import tool, ToolContext

    @tool
    async def lookup_order(order_id: str) -> dict:
        \"\"\"Look up an order.

        Args:
            order_id: The order number the customer reads out.
        \"\"\"
        return await db.orders.get(order_id)

The built-in invocation (:func:`invoke_tool`, registered as the ``trylast``
implementation of ``masquerade_tool_invoke``) always produces exactly one
:class:`~masquerade.events.ToolResult`, whatever the tool does.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, overload

import anyio

from .errors import ToolDefinitionError
from .events import ToolCall, ToolResult
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Tool", "tool", "ToolContext", "ToolKind", "as_tool", "invoke_tool"]

ToolKind: TypeAlias = Literal["backend_rpc", "client_event"]
logger = logging.getLogger("masquerade.tools")

DEFAULT_TIMEOUT = 4.0


@dataclass(frozen=True)
class ToolContext:
    """Given to a tool whose first parameter is annotated ``ToolContext``.

    Attributes:
        session: the running :class:`~masquerade.Session`.
        call_id: the id of this call.
        logger: a logger for the tool (``masquerade.tools.<name>``).
    """

    session: Session
    call_id: str
    logger: logging.Logger


@dataclass(eq=False)
class Tool:
    """A Python function the model can call. Build one with :func:`tool`."""

    fn: Callable[..., Any]
    name: str
    description: str
    timeout: float = DEFAULT_TIMEOUT
    kind: ToolKind = "backend_rpc"
    takes_context: bool = False
    _schemas: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (awaiting it when it is async)."""
        result = self.fn(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    kind: ToolKind = "backend_rpc",
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    kind: ToolKind = "backend_rpc",
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a function into a :class:`Tool`; use bare (``@tool``) or with options."""

    def build(f: Callable[..., Any]) -> Tool:
        if not callable(f):
            raise ToolDefinitionError(f"@tool needs a function, got {f!r}")
        doc = inspect.getdoc(f) or ""
        params = list(inspect.signature(f).parameters.values())
        takes_context = bool(params) and params[0].annotation in (ToolContext, "ToolContext")
        return Tool(
            fn=f,
            name=name or f.__name__,
            description=description or (doc.split("\n\n")[0].strip() or f.__name__),
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            kind=kind,
            takes_context=takes_context,
        )

    if fn is not None:
        return build(fn)
    return build


def as_tool(obj: Tool | Callable[..., Any]) -> Tool:
    """Return ``obj`` if it is a :class:`Tool`, else make one from the function."""
    return obj if isinstance(obj, Tool) else tool(obj)


def _error(call: ToolCall, message: str, error_type: str, started: float) -> ToolResult:
    return ToolResult(
        call_id=call.call_id,
        name=call.name,
        error=message,
        error_type=error_type,
        duration_ms=(time.perf_counter() - started) * 1000,
    )


async def _run(call: ToolCall, session: Session) -> ToolResult:
    started = time.perf_counter()
    found = session.tools.get(call.name)
    if found is None:
        known = ", ".join(sorted(session.tools)) or "none"
        return _error(
            call, f"unknown tool {call.name!r}; this session has: {known}", "not_found", started
        )
    if not isinstance(call.arguments, dict):
        return _error(call, "arguments must be a JSON object", "arguments", started)
    args: list[Any] = []
    if found.takes_context:
        args.append(
            ToolContext(session, call.call_id, logging.getLogger(f"masquerade.tools.{found.name}"))
        )
    try:
        with anyio.fail_after(found.timeout):
            if found.is_async:
                output = await found.fn(*args, **call.arguments)
            else:
                output = await anyio.to_thread.run_sync(
                    lambda: found.fn(*args, **call.arguments), abandon_on_cancel=True
                )
    except TimeoutError:
        return _error(call, f"tool {call.name!r} timed out after {found.timeout:g}s", "timeout",
                      started)
    except Exception as exc:
        logger.exception("tool %s raised", call.name)
        return _error(call, str(exc) or type(exc).__name__, "exception", started)
    return ToolResult(
        call_id=call.call_id,
        name=call.name,
        output=output,
        duration_ms=(time.perf_counter() - started) * 1000,
    )


@hookimpl(trylast=True)
def masquerade_tool_invoke(call: ToolCall, session: Session) -> Awaitable[ToolResult]:
    """Built-in invocation: run the session's Python tool named by the call."""
    return _run(call, session)


invoke_tool = _run
