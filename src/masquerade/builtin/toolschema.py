"""Built-in ``toolschema`` plugin: type hints + docstrings -> provider tool formats."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..tools import Tool

_JSON = {str: "string", int: "integer", float: "number", bool: "boolean"}


@hookimpl
def masquerade_tool_schema(tool: Tool, dialect: str) -> dict[str, Any] | None:
    params = list(inspect.signature(tool.fn).parameters.values())
    if tool.takes_context:
        params = params[1:]
    if dialect == "openai":
        return {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": {
                "type": "object",
                "properties": {p.name: {"type": _JSON.get(p.annotation, "string")} for p in params},
                "required": [p.name for p in params if p.default is inspect.Parameter.empty],
            },
        }
    if dialect == "runway":
        return {
            "type": tool.kind,
            "name": tool.name,
            "description": tool.description,
            "parameters": [
                {
                    "name": p.name,
                    "type": _JSON.get(p.annotation, "string"),
                    "description": p.name,
                    "required": p.default is inspect.Parameter.empty,
                }
                for p in params
            ],
        }
    return None
