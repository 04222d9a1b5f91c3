"""Tools: typed Python functions the model can call during a session.

::

    from typing import Literal
    from masquerade import tool, ToolContext

    @tool
    async def lookup_order(order_id: str) -> dict:
        \"\"\"Look up an order.

        Args:
            order_id: The order number the customer reads out.
        \"\"\"
        return await db.orders.get(order_id)

    @tool(timeout=2, kind="backend_rpc")
    def book_slot(ctx: ToolContext, day: Literal["monday", "tuesday"], hour: int = 10) -> str:
        \"\"\"Book a delivery slot.\"\"\"
        ctx.logger.info("booking for session %s", ctx.session.id)
        return f"booked {day} at {hour}:00"

A tool is checked when it is defined: its signature becomes a pydantic model (which later
validates the model's arguments), its JSON Schema and its Runway parameter list; anything
Runway's limits forbid is a :class:`~masquerade.ToolDefinitionError` right there, naming the
tool and the parameter. See :mod:`masquerade.builtin.toolschema` for the supported types.

**Invocation.** The built-in ``masquerade_tool_invoke`` implementation (``trylast``, so
plugins can wrap or replace it) always produces exactly one
:class:`~masquerade.events.ToolResult`, whatever the tool does:

=========================  ==================================================================
the call                   the answer
=========================  ==================================================================
unknown tool name          error ``not_found`` listing the session's tools
arguments not JSON/object  error ``arguments``
arguments invalid          error ``arguments`` naming each field and the problem
tool raises                error ``exception`` with the exception's message (the traceback
                           is logged under ``masquerade.tools``, never sent to the model)
tool too slow              cancelled; error ``timeout``
returns str                the string as-is
returns anything else      JSON-ready data (models, dataclasses, dicts, lists...)
=========================  ==================================================================

**Timeouts.** ``timeout`` is how long the function itself may run (default 3.5 s). For a
Runway ``backend_rpc`` tool masquerade announces ``timeoutSeconds = timeout + 0.5`` (at
least 1, at most 8): Runway waits that long for the answer, and the half second is kept for
the answer to travel back, so a slow tool is cancelled and answered with a timeout error
*before* Runway gives up on it. With the default, Runway waits its default 4 s.

**Where it runs.** An async tool runs in the task that answers the call, inside the
session's task group (cancelled with the session). A sync tool runs in a worker thread,
at most :data:`SYNC_TOOL_THREADS` at a time per session; on timeout the thread is abandoned
(Python cannot stop it) and a warning is logged.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, overload

import anyio
import anyio.to_thread
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python

from ._redact import redact
from ._runway_params import RPC_DELIVERY_MARGIN, RUNWAY_LIMITS
from ._toolspec import ToolSpec, copy_json, describe, timeout_seconds
from .errors import EventParseError, ToolArgumentsError, ToolDefinitionError
from .events import (
    MAX_JSON_DEPTH,
    ToolCall,
    ToolResult,
    decode_json,
    json_too_deep,
    trusted_model,
)
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .session import Session

__all__ = [
    "Tool",
    "tool",
    "ToolContext",
    "ToolKind",
    "as_tool",
    "check_session_tools",
    "invoke_tool",
    "invoke_bounded",
    "late_answer",
    "DEFAULT_TIMEOUT",
    "SYNC_TOOL_THREADS",
]

ToolKind: TypeAlias = Literal["backend_rpc", "client_event"]
logger = logging.getLogger("masquerade.tools")

#: A tool's own time budget when none is given: with the 0.5 s delivery margin, Runway
#: waits its default 4 s.
DEFAULT_TIMEOUT = 4.0 - RPC_DELIVERY_MARGIN
#: Sync tools of one session running at once in worker threads.
SYNC_TOOL_THREADS = 8
_ERROR_DETAILS = 5


@dataclass(frozen=True)
class ToolContext:
    """Given to a tool whose first parameter is annotated ``ToolContext``.

    The parameter is not part of the tool's schema; the model never sees it::

        @tool
        async def end_call(ctx: ToolContext, reason: str) -> str:
            \"\"\"End the call.\"\"\"
            ctx.logger.info("ending: %s", reason)
            ctx.session.end("tool")
            return "ending the call"

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
    """A Python function the model can call. Build one with :func:`tool`.

    Everything else is derived from ``fn`` when the tool is created (and checked: a tool
    that cannot be described raises :class:`~masquerade.ToolDefinitionError`).

    Attributes:
        fn: the function (sync or async).
        name: the name the model calls it by (the function's name by default).
        description: what it does (the docstring's description by default).
        timeout: seconds the function may run before it is cancelled.
        kind: Runway's tool kind, ``"backend_rpc"`` (answered by Python) or
            ``"client_event"`` (sent to the frontend).
        takes_context: whether the first parameter is a :class:`ToolContext`
            (derived from the signature).
    """

    fn: Callable[..., Any]
    name: str = ""
    description: str = ""
    timeout: float = DEFAULT_TIMEOUT
    kind: ToolKind = "backend_rpc"
    takes_context: bool = False
    _schemas: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    #: Names visible where the tool is defined (resolves string annotations).
    _localns: InitVar[Mapping[str, Any] | None] = None
    _spec: ToolSpec = field(init=False, repr=False)
    _is_async: bool = field(init=False, repr=False)
    _logger: logging.Logger = field(init=False, repr=False)

    def __post_init__(self, _localns: Mapping[str, Any] | None) -> None:
        if not callable(self.fn):
            raise ToolDefinitionError(
                f"a tool needs a function, got {type(self.fn).__name__} {self.fn!r}",
                hint="decorate a def or async def with @tool",
            )
        if not self.name:
            self.name = str(getattr(self.fn, "__name__", "") or "")
            if not self.name:
                raise ToolDefinitionError(
                    f"{self.fn!r} has no __name__ to name the tool after",
                    hint="pass one: tool(name=...)(fn)",
                )
        self._spec, self.takes_context = describe(
            self.fn,
            name=self.name,
            description=self.description or None,
            kind=self.kind,
            timeout=self.timeout,
            context_type=ToolContext,
            localns=_localns,
        )
        self.description = self._spec.description
        call = getattr(self.fn, "__call__", None)  # noqa: B004 - an async __call__ counts
        self._is_async = inspect.iscoroutinefunction(self.fn) or (
            not inspect.isfunction(self.fn) and inspect.iscoroutinefunction(call)
        )
        self._logger = logging.getLogger(f"masquerade.tools.{self.name}")

    # ---------------------------------------------------------------- derived
    @property
    def is_async(self) -> bool:
        return self._is_async

    @property
    def arguments_model(self) -> type[BaseModel]:
        """The pydantic model that validates the model's arguments (fields are aliased
        to the parameter names)."""
        return self._spec.model

    @property
    def parameters_schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments (a copy)."""
        return copy_json(self._spec.parameters)  # type: ignore[no-any-return]

    @property
    def timeout_seconds(self) -> float:
        """How long Runway waits for a ``backend_rpc`` answer: ``timeout`` plus the
        delivery margin, within Runway's 1-8 s."""
        return timeout_seconds(self.timeout)

    # ---------------------------------------------------------------- calling
    def parse_arguments(
        self, arguments: Mapping[str, Any] | str
    ) -> tuple[list[Any], dict[str, Any]]:
        """Validate the model's arguments; return the positional and keyword arguments
        for :attr:`fn` (without the :class:`ToolContext`).

        ``arguments`` is a JSON object, decoded or as text. Raises
        :class:`~masquerade.ToolArgumentsError` whose message names every bad field.
        """
        if type(arguments) is dict:  # the common case first: a decoded object
            if json_too_deep(arguments):
                raise ToolArgumentsError(
                    f"arguments for {self.name!r} nest deeper than {MAX_JSON_DEPTH} levels",
                    hint="send the arguments as a flatter JSON object",
                )
        elif isinstance(arguments, str | bytes):
            try:
                decoded = decode_json(arguments)
            except EventParseError as exc:
                raise ToolArgumentsError(
                    f"arguments for {self.name!r} are not valid JSON: {exc.message}",
                    hint="send the arguments as a JSON object",
                ) from None
            arguments = decoded
        elif json_too_deep(arguments):
            raise ToolArgumentsError(
                f"arguments for {self.name!r} nest deeper than {MAX_JSON_DEPTH} levels",
                hint="send the arguments as a flatter JSON object",
            )
        if type(arguments) is not dict and not isinstance(arguments, Mapping):
            raise ToolArgumentsError(
                f"arguments for {self.name!r} must be a JSON object, got "
                f"{_json_type(arguments)}",
                hint="send the arguments as a JSON object",
            )
        try:
            # Strict, from JSON: a string is never turned into a number, so what passes
            # is exactly what the JSON Schema the model was given allows.
            payload = to_json(arguments)
        except PydanticSerializationError as exc:
            raise ToolArgumentsError(
                f"arguments for {self.name!r} are not JSON data: {exc}",
                hint="send the arguments as a JSON object",
            ) from None
        try:
            validated = self._spec.model.__pydantic_validator__.validate_json(
                payload, strict=True
            )
        except ValidationError as exc:
            raise ToolArgumentsError(_describe_errors(self.name, exc)) from None
        given = validated.__pydantic_fields_set__
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for field_name, param_name, positional in self._spec.fields:
            if positional:
                args.append(getattr(validated, field_name))
            elif field_name in given:
                # Defaults are left to the function (a sentinel default stays itself).
                kwargs[param_name] = getattr(validated, field_name)
        return args, kwargs

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (awaiting it when it is async)."""
        result = self.fn(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _describe_errors(name: str, exc: ValidationError) -> str:
    problems: list[str] = []
    errors = exc.errors(include_url=False, include_context=False)
    for error in errors[:_ERROR_DETAILS]:
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        message = error["msg"]
        if error["type"] != "missing" and "input" in error:
            shown = json.dumps(error["input"], default=str)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            message = f"{message} (got {shown})"
        problems.append(f"{where}: {message}")
    if len(errors) > _ERROR_DETAILS:
        problems.append(f"and {len(errors) - _ERROR_DETAILS} more")
    return redact(f"invalid arguments for {name!r}: " + "; ".join(problems))


@overload
def tool(fn: Callable[..., Any] | Tool, /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    kind: ToolKind = "backend_rpc",
) -> Callable[[Callable[..., Any] | Tool], Tool]: ...
def tool(
    fn: Callable[..., Any] | Tool | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    kind: ToolKind = "backend_rpc",
) -> Tool | Callable[[Callable[..., Any] | Tool], Tool]:
    """Turn a function into a :class:`Tool`; use bare (``@tool``) or with options.

    Args:
        name: the name the model uses (default: the function's name).
        description: what the tool does (default: the docstring's description).
        timeout: seconds the function may run (default 3.5; at most 7.5 for a
            ``backend_rpc`` tool, so Runway's 8 s limit is kept).
        kind: ``"backend_rpc"`` (default) or ``"client_event"`` (Runway's tool kinds).

    Raises:
        ToolDefinitionError: the tool cannot be described within Runway's limits; the
            message names the tool and the parameter and says what to change.
    """

    def build(f: Callable[..., Any] | Tool, localns: Mapping[str, Any] | None = None) -> Tool:
        if localns is None:  # used as @tool(...): the caller is where the tool is defined
            localns = sys._getframe(1).f_locals
        if isinstance(f, Tool):  # re-wrap with other options
            return Tool(
                fn=f.fn,
                name=name or f.name,
                description=description if description is not None else f.description,
                timeout=f.timeout if timeout is None else timeout,
                kind=kind,
                _localns=localns,
            )
        if description is not None and not description.strip():
            raise ToolDefinitionError(
                f"tool {name or getattr(f, '__name__', f)!r}: description is empty",
                hint="describe what the tool does, or leave description out to use the "
                "docstring",
            )
        return Tool(
            fn=f,
            name=name or "",
            description=description or "",
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            kind=kind,
            _localns=localns,
        )

    if fn is not None:
        return build(fn, sys._getframe(1).f_locals)
    return build


def as_tool(obj: Tool | Callable[..., Any]) -> Tool:
    """Return ``obj`` if it is a :class:`Tool`, else make one from the function."""
    return obj if isinstance(obj, Tool) else tool(obj)


def check_session_tools(tools: Iterable[Tool], *, source: str = "the session") -> None:
    """Check the tools of one session: unique names, and at most Runway's 20.

    Raises :class:`~masquerade.ToolDefinitionError` saying what to change.
    """
    seen: set[str] = set()
    count = 0
    for t in tools:
        count += 1
        if t.name in seen:
            raise ToolDefinitionError(
                f"two tools of {source} are named {t.name!r}",
                hint="give one of them another name with @tool(name=...)",
            )
        seen.add(t.name)
    limit = RUNWAY_LIMITS["tools_per_session"]
    if count > limit:
        raise ToolDefinitionError(
            f"{source} has {count} tools; Runway allows at most {limit} per session",
            hint="keep the tools this avatar needs, or split the work across graph nodes "
            "(plugin tools count too: disable plugins you do not need)",
        )


# ------------------------------------------------------------------ invocation
_limiters: weakref.WeakKeyDictionary[Session, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _limiter(session: Session) -> anyio.CapacityLimiter:
    limiter = _limiters.get(session)
    if limiter is None:
        limiter = _limiters[session] = anyio.CapacityLimiter(SYNC_TOOL_THREADS)
    return limiter


# What a validated ToolResult reports as set, for each way this module builds one.
_ANSWERED = frozenset({"call_id", "name", "output", "duration_ms"})
_FAILED = frozenset({"call_id", "name", "error", "error_type", "duration_ms"})
_LATE = frozenset({"call_id", "name", "error", "error_type"})


def _answer(call: ToolCall, output: Any, started: float) -> ToolResult:
    # Built without validation: the call's id and name are checked strings, and the
    # output is JSON data (or a string) by now.
    return trusted_model(ToolResult, {
        "type": "tool.result", "call_id": call.call_id, "name": call.name, "output": output,
        "error": None, "error_type": None,
        "duration_ms": (time.perf_counter() - started) * 1000,
    }, _ANSWERED)


def _error(call: ToolCall, message: str, error_type: str, started: float) -> ToolResult:
    return trusted_model(ToolResult, {
        "type": "tool.result", "call_id": call.call_id, "name": call.name, "output": None,
        "error": message, "error_type": error_type,
        "duration_ms": (time.perf_counter() - started) * 1000,
    }, _FAILED)


def late_answer(call: ToolCall, bound: float) -> ToolResult:
    """The ``timeout`` answer to a call whose whole invocation chain took more than
    ``bound`` seconds (the session's bound: see :meth:`~masquerade.Session.call_tool`)."""
    return trusted_model(ToolResult, {
        "type": "tool.result", "call_id": call.call_id, "name": call.name, "output": None,
        "error": f"tool {call.name!r} did not answer within {bound:.2f}s",
        "error_type": "timeout", "duration_ms": 0.0,
    }, _LATE)


async def invoke_tool(call: ToolCall, session: Session) -> ToolResult:
    """Run the session's Python tool named by ``call``; always return one result.

    This is the built-in ``masquerade_tool_invoke``; call it from your own
    implementation to fall back to it.
    """
    return await invoke_bounded(call, session, None)


async def invoke_bounded(call: ToolCall, session: Session, bound: float | None) -> ToolResult:
    """:func:`invoke_tool`, with the whole call bounded by ``bound`` seconds as well.

    One timeout scope serves both: the tool's own ``timeout`` and ``bound``, whichever
    ends first. Past ``bound`` (when it is not longer than the tool's timeout) the answer
    is :func:`late_answer`, the one the session gives when its bound around the whole
    ``masquerade_tool_invoke`` chain runs out; the host calls this directly while the
    chain is only the built-in invocation.
    """
    started = time.perf_counter()
    found = session.tools.get(call.name)
    if found is None:
        known = ", ".join(sorted(session.tools)) or "none"
        return _error(
            call,
            f"unknown tool {call.name!r}; this session's tools are: {known}",
            "not_found",
            started,
        )
    try:
        args, kwargs = found.parse_arguments(call.arguments)
    except ToolArgumentsError as exc:
        return _error(call, exc.message, "arguments", started)
    if found.takes_context:
        args.insert(0, ToolContext(session, call.call_id, found._logger))
    fn = found.fn
    output: Any = None
    limit = found.timeout
    late = False
    # (On a tie the session's bound wins, as it did when it was a scope of its own
    # around this one, entered first.)
    if bound is not None and bound <= limit:
        limit, late = bound, True
    try:
        with anyio.move_on_after(limit) as scope:
            if found._is_async:
                output = await fn(*args, **kwargs)
            else:
                output = await anyio.to_thread.run_sync(
                    functools.partial(fn, *args, **kwargs),
                    abandon_on_cancel=True,
                    limiter=_limiter(session),
                )
    except Exception as exc:
        logger.exception("tool %s raised (call %s)", call.name, call.call_id)
        message = redact(str(exc)) or type(exc).__name__
        return _error(call, message, "exception", started)
    if scope.cancelled_caught:
        if late:
            return late_answer(call, limit)
        if not found._is_async:
            logger.warning(
                "sync tool %s timed out after %gs; its worker thread was abandoned and may "
                "still be running",
                call.name,
                found.timeout,
            )
        return _error(
            call,
            f"tool {call.name!r} did not finish within {found.timeout:g}s and was cancelled",
            "timeout",
            started,
        )
    if not isinstance(output, str):
        try:
            output = to_jsonable_python(output)
        except PydanticSerializationError as exc:
            logger.error("tool %s returned a value that is not JSON data: %s", call.name, exc)
            return _error(
                call,
                f"tool {call.name!r} returned a {type(output).__name__}, which cannot be "
                "sent as JSON",
                "exception",
                started,
            )
    return _answer(call, output, started)


@hookimpl(trylast=True)
def masquerade_tool_invoke(call: ToolCall, session: Session) -> Awaitable[ToolResult]:
    """Built-in invocation: run the session's Python tool named by the call."""
    return invoke_bounded(call, session, None)
