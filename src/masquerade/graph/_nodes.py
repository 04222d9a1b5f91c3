"""Nodes and edges as the engine reads them: node specs, conditional edges (routers),
and the wiring of a graph. Building them is :class:`~masquerade.Graph`'s job; running them
is :mod:`masquerade.graph._engine`'s.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import GraphError
from ._retry import RetryPolicy
from ._validate import END

__all__ = ["NodeSpec", "Branch", "Wiring", "is_async_callable", "callable_name"]


def _unwrap(fn: Any) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def is_async_callable(fn: Any) -> bool:
    """Whether calling ``fn`` returns a coroutine (functions, partials, objects with an
    ``async def __call__``)."""
    target = _unwrap(fn)
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(target, "__call__", None)  # noqa: B004 - we need the attribute itself
    return call is not None and inspect.iscoroutinefunction(call)


def callable_name(fn: Any) -> str:
    target = _unwrap(fn)
    return str(getattr(target, "__name__", None) or type(target).__name__)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    fn: Callable[[Any], Any]
    is_async: bool
    output_keys: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    #: the node's :class:`~masquerade.RetryPolicy`, if it has one
    retry: RetryPolicy | None = None


@dataclass(frozen=True)
class Branch:
    """A conditional edge: ``router(state)`` picks the next node(s)."""

    source: str
    router: Callable[[Any], Any]
    mapping: Mapping[Hashable, str] | None
    #: every node the router may pick, or ``None`` when it is not known (may be any)
    destinations: frozenset[str] | None
    is_async: bool = False

    async def route(self, state: Any) -> list[str]:
        try:
            choice = self.router(state)
            if inspect.isawaitable(choice):
                choice = await choice
        except Exception as exc:
            raise GraphError(
                f"the router after node {self.source!r} ({callable_name(self.router)}) raised "
                f"{type(exc).__name__}: {exc}",
                hint="see the chained exception for the router's traceback",
            ) from exc
        choices = list(choice) if isinstance(choice, list | tuple | set | frozenset) else [choice]
        picked: list[str] = []
        for value in choices:
            target = self._resolve(value)
            if target not in picked:
                picked.append(target)
        return picked

    def _resolve(self, value: Any) -> str:
        if self.mapping is not None:
            try:
                return self.mapping[value]
            except (KeyError, TypeError):
                allowed = ", ".join(repr(k) for k in self.mapping)
                raise GraphError(
                    f"the router after node {self.source!r} returned {value!r}, which is not "
                    f"one of its branches ({allowed})",
                    hint="return one of those keys, or add the value to the mapping",
                ) from None
        if isinstance(value, str) and (
            self.destinations is None or value in self.destinations or value == END
        ):
            return value
        allowed = ", ".join(repr(d) for d in sorted(self.destinations or ()))
        raise GraphError(
            f"the router after node {self.source!r} returned {value!r}, which is not a node"
            + (f" it may go to ({allowed})" if self.destinations else ""),
            hint="return a node name or END (or a list of them)",
        )


def _literal_destinations(router: Callable[..., Any]) -> frozenset[str] | None:
    """Destinations declared by a ``-> Literal["a", "b"]`` return annotation."""
    try:
        hints = typing.get_type_hints(_unwrap(router))
    except Exception:
        return None
    ret = hints.get("return")
    if ret is None:
        return None
    args: list[Any] = []
    pending = [ret]
    while pending:
        current = pending.pop()
        origin = typing.get_origin(current)
        if origin is Literal:
            args.extend(typing.get_args(current))
        elif origin in (typing.Union, list, tuple, set, frozenset) or (
            origin is not None and str(origin) == "types.UnionType"
        ):
            pending.extend(typing.get_args(current))
        elif isinstance(current, type) and issubclass(current, type(None)):
            continue
        else:
            return None  # a plain str or anything else: unknown destinations
    if not args or not all(isinstance(a, str) for a in args):
        return None
    return frozenset(args)


@dataclass
class Wiring:
    """The edges of a graph, grouped the way the engine reads them."""

    edges: dict[str, list[str]] = field(default_factory=dict)
    joins: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    branches: dict[str, list[Branch]] = field(default_factory=dict)
