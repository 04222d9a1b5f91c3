"""Building normalized events without validation, for the per-event hot path.

The provider builds events from fields taken from the wire, so running full pydantic
validation per event would only cost time: :func:`builder` returns a function that fills an
event's ``__dict__`` directly (about half the cost of ``model_construct``). A field the
caller does not pass gets its declared default, so an event class that gains a field keeps
working. The function is generated once per class (checks unrolled, the model's slots set
through their descriptors).

Every event still validates against its model: each field whose annotation is made of
plain types (``str``, ``int | str | None``, ``dict[str, Any]``...) is checked with one
``type(value) in allowed`` test; a value of another type (a number where the wire should
have sent text) sends the event through ``model_validate``, which either converts it the
way pydantic would or raises ``ValidationError`` (the handler then reports the frame as a
non-fatal ``error`` event). Object and array fields (a ``provider`` event's payload) are
refused past :data:`masquerade.events.MAX_JSON_DEPTH` levels of nesting, unless the caller
already knows from the frame's text that it cannot nest that deep (:func:`shallow_text`).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from masquerade.errors import EventParseError
from masquerade.events import MAX_JSON_DEPTH, json_too_deep

__all__ = ["builder", "positional_builder", "shallow_text"]

E = TypeVar("E", bound=BaseModel)


# The slots every pydantic model instance has, set through their descriptors (a bound
# ``__set__`` is about twice as fast as ``object.__setattr__`` with the slot's name).
_SET_DICT = BaseModel.__dict__["__dict__"].__set__
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__


def builder(cls: type[E]) -> Callable[..., E]:
    """A function ``make(fields, shallow=False) -> event`` for ``cls``; ``fields`` must
    include ``type`` and is used as the event's ``__dict__`` (do not reuse it).

    ``shallow=True`` tells ``make`` that the caller knows the fields nest at most
    :data:`~masquerade.events.MAX_JSON_DEPTH` levels (see :func:`shallow_text`), so
    object and array fields are not walked again.

    The function is generated per class with its checks unrolled: one ``type(value)``
    test per checked field and no loop per event.
    """
    names = tuple(cls.model_fields)
    env = _construct_env(cls, names)
    env.update(fill_defaults=_defaults_filler(cls, names), too_deep=json_too_deep,
               EventParseError=EventParseError)
    lines = [
        "def make(fields, shallow=False):",
        f"    if len(fields) != {len(names)}:",
        "        fields = fill_defaults(fields)",
    ]
    nested: list[str] = []
    for index, (name, info) in enumerate(cls.model_fields.items()):
        allowed = _plain_types(info.annotation)
        if allowed is None:
            continue
        if len(allowed) == 1:
            (only,) = allowed
            env[f"T{index}"] = only
            test = f"type(fields[{name!r}]) is not T{index}"
        else:
            env[f"A{index}"] = allowed
            test = f"type(fields[{name!r}]) not in A{index}"
        # A value of another type goes through model_validate, which converts it the
        # way pydantic would or raises ValidationError.
        lines += [f"    if {test}:", "        return validate(fields)"]
        if allowed & {dict, list}:
            nested.append(name)
    if nested:
        lines.append("    if not shallow:")
        for name in nested:
            lines += [
                f"        if fields[{name!r}] and too_deep(fields[{name!r}]):",
                f"            raise EventParseError({_too_deep_message(name)!r})",
            ]
    lines += _CONSTRUCT
    exec(compile("\n".join(lines), f"<builder {cls.__name__}>", "exec"), env)
    make: Callable[..., E] = env["make"]
    return make


#: The generated builders' last lines: the event made from checked ``fields`` without
#: pydantic's validation (what ``model_construct`` does, minus its per-call overhead).
_CONSTRUCT = [
    "    event = new(cls)",
    "    set_dict(event, fields)",
    "    set_fields_set(event, FIELDS_SET)",
    "    set_extra(event, None)",
    "    set_private(event, None)",
    "    return event",
]


def _construct_env(cls: type[Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The names :data:`_CONSTRUCT` and the type-check fallback use."""
    return {
        "cls": cls,
        "new": cls.__new__,
        "validate": cls.model_validate,
        # One set shared by the class's events: they are frozen, so nothing adds to it,
        # and model_copy(update=...) copies it before extending the copy.
        "FIELDS_SET": set(names),
        "set_dict": _SET_DICT,
        "set_fields_set": _SET_FIELDS_SET,
        "set_extra": _SET_EXTRA,
        "set_private": _SET_PRIVATE,
    }


def positional_builder(cls: type[E], *args: str, **fixed: str) -> Callable[..., E]:
    """A function ``make(*values) -> event`` for the per-frame events: the fields named
    by ``args`` come as positional values (checked like :func:`builder` does), the
    ``fixed`` ones are constants of the caller's code (not checked per event). Together
    they must name every field, none of them an object or an array."""
    names = tuple(cls.model_fields)
    if set(args) | set(fixed) != set(names) or set(args) & set(fixed):
        raise TypeError(f"{cls.__name__}: give every field once, as an argument or fixed")
    env = _construct_env(cls, names)
    items = ", ".join(
        f"{name!r}: {name}" if name in args else f"{name!r}: {fixed[name]!r}" for name in names
    )
    lines = [f"def make({', '.join(args)}):", f"    fields = {{{items}}}"]
    for index, name in enumerate(args):
        allowed = _plain_types(cls.model_fields[name].annotation)
        if allowed is None or allowed & {dict, list}:
            raise TypeError(f"{cls.__name__}.{name} cannot be checked by its type alone")
        env[f"A{index}"] = allowed
        lines += [f"    if type({name}) not in A{index}:", "        return validate(fields)"]
    lines += _CONSTRUCT
    exec(compile("\n".join(lines), f"<positional builder {cls.__name__}>", "exec"), env)
    make: Callable[..., E] = env["make"]
    return make


def shallow_text(text: str | bytes | None) -> bool:
    """Whether JSON ``text`` surely nests at most ``MAX_JSON_DEPTH`` levels: it has no
    more opening brackets than that (brackets inside strings only make this stricter).
    Two ``count`` calls in C, instead of walking the decoded value; ``None`` (no text
    to go by) is never shallow."""
    if type(text) is str:
        return text.count("{") + text.count("[") <= MAX_JSON_DEPTH
    if isinstance(text, bytes | bytearray):
        return text.count(b"{") + text.count(b"[") <= MAX_JSON_DEPTH
    return False


def _defaults_filler(
    cls: type[BaseModel], names: tuple[str, ...]
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def fill_defaults(fields: dict[str, Any]) -> dict[str, Any]:
        for name in names:
            if name not in fields:
                fields[name] = cls.model_fields[name].get_default(call_default_factory=True)
        return fields

    return fill_defaults


def _too_deep_message(name: str) -> str:
    return f"{name} nests deeper than {MAX_JSON_DEPTH} levels"


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
