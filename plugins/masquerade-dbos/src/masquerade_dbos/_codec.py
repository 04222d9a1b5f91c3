"""JSON encoding of graph states and node updates for checkpoints.

A checkpoint must read back in another process, possibly one that loaded the graph's
module under another name, so updates are stored as JSON validated against the state
model's field types (never as pickled user classes).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

__all__ = ["encode_update", "decode_update", "encode_state"]


@lru_cache(maxsize=1024)
def _adapter(model: type[BaseModel], field: str) -> TypeAdapter[Any]:
    annotation: Any = model.model_fields[field].annotation
    return TypeAdapter(annotation)


def encode_update(model: type[BaseModel], update: dict[str, Any]) -> dict[str, Any]:
    """``{field: value}`` -> JSON-ready ``{field: value}``, each value dumped by its type."""
    return {
        key: _adapter(model, key).dump_python(value, mode="json") for key, value in update.items()
    }


def decode_update(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`encode_update`."""
    return {key: _adapter(model, key).validate_python(value) for key, value in data.items()}


def encode_state(state: BaseModel) -> dict[str, Any]:
    return state.model_dump(mode="json")
