"""The typed state of a graph: normalizing node updates, merging them with reducers.

A state is a pydantic model. A field may declare a *reducer*, a callable
``(current, update) -> new`` placed in its ``Annotated`` metadata (LangGraph's
convention)::

    class State(BaseModel):
        notes: Annotated[list[str], operator.add] = []   # branches append
        answer: str | None = None                        # last write wins

Within one step, updates to a reducer field are folded in node order; two nodes writing
the same plain field in the same step is an error (which value should win is a guess, so
masquerade refuses to make it). Across steps the last write wins.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import GraphError

__all__ = ["StateSchema", "StateT", "find_reducer"]

StateT = TypeVar("StateT", bound=BaseModel)
Reducer = Callable[[Any, Any], Any]


def find_reducer(metadata: Sequence[Any]) -> Reducer | None:
    """The first plain callable in a field's ``Annotated`` metadata (classes and pydantic
    constraint objects are not reducers)."""
    for item in metadata:
        if callable(item) and not isinstance(item, type):
            return item  # type: ignore[no-any-return]
    return None


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in err["loc"]) or "state", err["msg"]) for err in exc.errors()]


@dataclass(frozen=True)
class StateSchema(Generic[StateT]):
    """What the engine needs to know about a state model."""

    model: type[StateT]
    reducers: Mapping[str, Reducer]
    fields: frozenset[str]
    allow_extra: bool

    @classmethod
    def of(cls, model: type[StateT]) -> StateSchema[StateT]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise GraphError(
                f"a graph's state must be a pydantic model class, got {model!r}",
                hint="define `class State(pydantic.BaseModel): ...` and pass Graph(State)",
            )
        reducers: dict[str, Reducer] = {}
        for name, info in model.model_fields.items():
            reducer = find_reducer(info.metadata)
            if reducer is not None:
                reducers[name] = reducer
        return cls(
            model=model,
            reducers=reducers,
            fields=frozenset(model.model_fields),
            allow_extra=model.model_config.get("extra") == "allow",
        )

    @property
    def name(self) -> str:
        return self.model.__name__

    # ------------------------------------------------------------ the initial state
    def coerce(self, value: StateT | Mapping[str, Any] | None) -> StateT:
        """The initial state: a model instance as-is, a mapping (or ``None``) validated."""
        if isinstance(value, self.model):
            return value
        if isinstance(value, BaseModel):
            raise GraphError(
                f"the initial state is a {type(value).__name__}, but this graph's state is "
                f"{self.name}",
                hint=f"pass a {self.name}(...) or a dict of its fields",
            )
        if isinstance(value, Mapping) and not self.allow_extra:
            for key in value:
                if key not in self.fields:
                    close = difflib.get_close_matches(str(key), list(self.fields), n=1)
                    have = ", ".join(self.model.model_fields) or "none"
                    raise GraphError(
                        f"the initial state has an unknown key {key!r}"
                        + (f"; did you mean {close[0]!r}?" if close else "")
                        + f" ({self.name} has: {have})",
                        hint=f"use the field names of {self.name}",
                    )
        try:
            return self.model.model_validate(dict(value or {}))
        except ValidationError as exc:
            detail = "; ".join(f"{loc}: {msg}" for loc, msg in _problems(exc))
            required = [n for n, f in self.model.model_fields.items() if f.is_required()]
            hint = (
                f"{self.name} requires {', '.join(required)}; pass them in the initial state"
                if required
                else f"pass values that fit the fields of {self.name}"
            )
            raise GraphError(
                f"the initial state does not fit {self.name}: {detail}", hint=hint
            ) from None
        except TypeError:
            raise GraphError(
                f"the initial state must be a {self.name} or a mapping, got {type(value).__name__}",
                hint=f"pass a {self.name}(...) or a dict of its fields",
            ) from None

    def copy_for_node(self, state: StateT) -> StateT:
        """A private copy of the state for one node, so that in-place changes (or two
        concurrent branches) never alter the shared state behind the engine's back."""
        try:
            return state.model_copy(deep=True)
        except Exception:  # an uncopyable field (a client, a lock): share it
            return state.model_copy()

    # ------------------------------------------------------------ node updates
    def normalize(self, node: str, update: Any, before: StateT) -> dict[str, Any]:
        """Turn what a node returned into ``{field: value}``.

        * ``None``: no change;
        * a mapping: the fields to change;
        * an instance of the state model: the fields whose value differs from ``before``;
        * any other pydantic model: the fields it set explicitly.
        """
        if update is None:
            return {}
        if isinstance(update, self.model):
            changed = {
                name: value
                for name, value in update.__dict__.items()
                if name not in before.__dict__ or before.__dict__[name] != value
            }
            reduced = sorted(set(changed) & set(self.reducers))
            if reduced:
                raise GraphError(
                    f"node {node!r} returned a whole {self.name} with a changed reducer field "
                    f"{reduced[0]!r}; masquerade cannot tell the new items from the old",
                    hint=f"return a dict with only the new items: {{{reduced[0]!r}: [...]}}",
                )
            return changed
        if isinstance(update, BaseModel):
            data = {name: getattr(update, name) for name in update.model_fields_set}
        elif isinstance(update, Mapping):
            data = dict(update)
        else:
            raise GraphError(
                f"node {node!r} returned a {type(update).__name__}; a node returns the fields "
                "to change",
                hint=f"return a dict (e.g. {{'field': value}}), a {self.name}, or None",
            )
        if not self.allow_extra:
            for key in data:
                if key not in self.fields:
                    close = difflib.get_close_matches(str(key), self.fields, n=1)
                    suggestion = f"; did you mean {close[0]!r}?" if close else ""
                    raise GraphError(
                        f"node {node!r} wrote {key!r}, which is not a field of "
                        f"{self.name}{suggestion}",
                        hint=f"add the field to {self.name} or fix the node's update",
                    )
        return data

    def apply(self, state: StateT, updates: Sequence[tuple[str, dict[str, Any]]]) -> StateT:
        """Merge one step's updates (in node order) into a new, validated state."""
        if not any(update for _, update in updates):
            return state
        values = dict(state.__dict__)
        if state.__pydantic_extra__:
            values.update(state.__pydantic_extra__)
        writers: dict[str, list[str]] = {}
        for node, update in updates:
            for key, value in update.items():
                wrote = writers.setdefault(key, [])
                reducer = self.reducers.get(key)
                if reducer is None:
                    if wrote:
                        raise GraphError(
                            f"nodes {wrote[0]!r} and {node!r} both wrote {key!r} in the same "
                            "step, and the field has no reducer to merge them",
                            hint=f"declare one on the field, e.g. `{key}: Annotated[list[...], "
                            "operator.add]`, or let only one branch write it",
                        )
                    values[key] = value
                else:
                    try:
                        values[key] = reducer(values.get(key), value)
                    except Exception as exc:
                        raise GraphError(
                            f"the reducer of {self.name}.{key} failed on the update of node "
                            f"{node!r}: {type(exc).__name__}: {exc}",
                            hint="make the update the type the reducer expects",
                        ) from exc
                wrote.append(node)
        try:
            return self.model.model_validate(values)
        except ValidationError as exc:
            problems = _problems(exc)
            culprits: list[str] = []
            for loc, _ in problems:
                for node in writers.get(loc.split(".")[0], ()):
                    if node not in culprits:
                        culprits.append(node)
            if not culprits:
                culprits = [node for node, update in updates if update]
            detail = "; ".join(f"{loc}: {msg}" for loc, msg in problems)
            who = " and ".join(repr(n) for n in culprits)
            raise GraphError(
                f"the update of node {who} does not fit {self.name}: {detail}",
                hint="return values of the field's declared type",
            ) from None
