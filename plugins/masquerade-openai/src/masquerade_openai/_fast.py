"""Building normalized events without validation, for the per-event hot path.

The provider builds events from fields taken from the wire, so running full pydantic
validation per event would only cost time: :func:`builder` returns a function that fills an
event's ``__dict__`` directly (about half the cost of ``model_construct``). A field the
caller does not pass gets its declared default, so an event class that gains a field keeps
working.

Every event still validates against its model: each field whose annotation is made of
plain types (``str``, ``int | str | None``, ``dict[str, Any]``...) is checked with one
``type(value) in allowed`` test; a value of another type (a number where the wire should
have sent text) sends the event through ``model_validate``, which either converts it the
way pydantic would or raises ``ValidationError`` (the handler then reports the frame as a
non-fatal ``error`` event). Object and array fields (a ``provider`` event's payload) are
refused past :data:`masquerade.events.MAX_JSON_DEPTH` levels of nesting.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from masquerade.errors import EventParseError
from masquerade.events import MAX_JSON_DEPTH, json_too_deep

__all__ = ["builder"]

E = TypeVar("E", bound=BaseModel)


def builder(cls: type[E]) -> Callable[[dict[str, Any]], E]:
    """A function ``make(fields) -> event`` for ``cls``; ``fields`` must include ``type``
    and is used as the event's ``__dict__`` (do not reuse it)."""
    names = tuple(cls.model_fields)
    count = len(names)
    checks = tuple(
        (name, allowed)
        for name, info in cls.model_fields.items()
        if (allowed := _plain_types(info.annotation)) is not None
    )
    validate = cls.model_validate
    nested = tuple(name for name, allowed in checks if allowed & {dict, list})
    fields_set = frozenset(names)
    new = cls.__new__
    set_attr = object.__setattr__

    def fill_defaults(fields: dict[str, Any]) -> dict[str, Any]:
        for name in names:
            if name not in fields:
                fields[name] = cls.model_fields[name].get_default(call_default_factory=True)
        return fields

    def make(fields: dict[str, Any]) -> E:
        if len(fields) != count:
            fields = fill_defaults(fields)
        for name, allowed in checks:
            if type(fields[name]) not in allowed:
                return validate(fields)  # converts like pydantic, or raises ValidationError
        for name in nested:
            value = fields[name]
            if value and json_too_deep(value):
                raise EventParseError(f"{name} nests deeper than {MAX_JSON_DEPTH} levels")
        event = new(cls)
        set_attr(event, "__dict__", fields)
        set_attr(event, "__pydantic_fields_set__", fields_set)
        set_attr(event, "__pydantic_extra__", None)
        set_attr(event, "__pydantic_private__", None)
        return event

    return make


_PLAIN: dict[Any, frozenset[type]] = {
    str: frozenset({str}),
    int: frozenset({int}),
    float: frozenset({float, int}),
    bool: frozenset({bool}),
    type(None): frozenset({type(None)}),
    None: frozenset({type(None)}),
}


def _plain_types(annotation: Any) -> frozenset[type] | None:
    """The exact types a field accepts as-is, or ``None`` when it is not checked cheaply
    (``Literal``, ``Any``, models...)."""
    found = _PLAIN.get(annotation)
    if found is not None:
        return found
    origin = typing.get_origin(annotation)
    if origin is dict:
        return frozenset({dict})
    if origin is list:
        return frozenset({list})
    if origin in (typing.Union, types.UnionType):
        allowed: set[type] = set()
        for arg in typing.get_args(annotation):
            part = _plain_types(arg)
            if part is None:
                return None
            allowed |= part
        return frozenset(allowed)
    return None
