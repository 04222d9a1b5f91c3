"""Building normalized events without validation, for the per-event hot path.

The provider builds events from fields it has already checked, so running pydantic
validation again would only cost time: :func:`builder` returns a function that fills an
event's ``__dict__`` directly (about half the cost of ``model_construct``). A field the
caller does not pass gets its declared default, so an event class that gains a field keeps
working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["builder"]

E = TypeVar("E", bound=BaseModel)


def builder(cls: type[E]) -> Callable[[dict[str, Any]], E]:
    """A function ``make(fields) -> event`` for ``cls``; ``fields`` must include ``type``
    and is used as the event's ``__dict__`` (do not reuse it)."""
    names = tuple(cls.model_fields)
    count = len(names)
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
        event = new(cls)
        set_attr(event, "__dict__", fields)
        set_attr(event, "__pydantic_fields_set__", fields_set)
        set_attr(event, "__pydantic_extra__", None)
        set_attr(event, "__pydantic_private__", None)
        return event

    return make
