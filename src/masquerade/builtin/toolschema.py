"""Built-in ``toolschema`` plugin: type hints + docstrings -> provider tool formats.

A tool is described once, when it is defined (:mod:`masquerade._toolspec`: one pydantic
model from the signature, the JSON Schema of its parameters, Runway's checks), so a tool
Runway would reject fails at ``@tool``.

The hook then answers in two dialects::

    >>> host.tool_schema(book_slot, "openai")
    {'type': 'function', 'name': 'book_slot', 'description': 'Book a delivery slot.',
     'parameters': {'type': 'object', 'properties': {'day': {...}, 'hour': {...}},
                    'required': ['day', 'hour'], 'additionalProperties': False}}
    >>> host.tool_schema(book_slot, "runway")
    {'type': 'backend_rpc', 'name': 'book_slot', 'description': 'Book a delivery slot.',
     'parameters': [{'name': 'day', 'type': 'string', 'description': 'Day of the week.',
                     'required': True}, ...],
     'timeoutSeconds': 1.0}

What a parameter may be: ``str``, ``int``, ``float``, ``bool``, ``Literal`` and ``Enum``
of strings, ``list[T]`` of those scalars, ``Optional[T]`` / ``T | None``, and nested
pydantic models, dataclasses and ``TypedDict`` (from ``typing_extensions`` before Python
3.12) whose fields follow the same rules. Descriptions come from the docstring (Google,
NumPy or Sphinx style, parsed by griffe; nested classes document their fields in an
``Attributes:`` section) or from ``Annotated[T, Field(description=...)]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._runway_params import RPC_DELIVERY_MARGIN, RUNWAY_LIMITS
from .._toolspec import ToolSpec, copy_json, describe, parse_docstring
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..tools import Tool

__all__ = [
    "RUNWAY_LIMITS",
    "RPC_DELIVERY_MARGIN",
    "ToolSpec",
    "describe",
    "parse_docstring",
    "masquerade_tool_schema",
]


def openai_schema(tool: Tool) -> dict[str, Any]:
    """The OpenAI Realtime function tool: ``{type, name, description, parameters}``."""
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": copy_json(tool._spec.parameters),
    }


def runway_schema(tool: Tool) -> dict[str, Any]:
    """The Runway tool: ``{type, name, description, parameters[, timeoutSeconds]}``."""
    schema: dict[str, Any] = {
        "type": tool.kind,
        "name": tool.name,
        "description": tool.description,
        "parameters": copy_json(tool._spec.runway_parameters),
    }
    if tool.kind == "backend_rpc":
        schema["timeoutSeconds"] = tool.timeout_seconds
    return schema


_DIALECTS: dict[str, Callable[[Tool], dict[str, Any]]] = {
    "openai": openai_schema,
    "runway": runway_schema,
}


@hookimpl
def masquerade_tool_schema(tool: Tool, dialect: str) -> dict[str, Any] | None:
    """Describe ``tool`` for the ``openai`` or ``runway`` dialect (``None`` otherwise)."""
    make = _DIALECTS.get(dialect)
    return None if make is None else make(tool)
