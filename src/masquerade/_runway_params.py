"""Runway's tool format: its documented limits, and JSON Schema -> Runway parameters.

Runway describes a tool's parameters as a flat list (``name``, ``type``,
``description``, ``required``, ``enum``, nested ``properties``/``items``) with limits on
names, counts and lengths. :func:`runway_parameters` converts the JSON Schema of a
tool's arguments, and raises :class:`Problem` naming the parameter when Runway cannot
express it; :func:`masquerade._toolspec.describe` runs it when a tool is defined.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "RUNWAY_LIMITS",
    "RPC_DELIVERY_MARGIN",
    "Problem",
    "check_description",
    "check_name",
    "humanize",
    "runway_parameters",
]

#: Runway's documented limits on tools (docs.dev.runwayml.com/characters/tools/reference).
RUNWAY_LIMITS: Mapping[str, Any] = {
    "tools_per_session": 20,
    "parameters_per_tool": 20,
    "name_length": 64,
    "description_length": 1024,
    "enum_values": 20,
    "enum_value_length": 64,
    "properties_per_object": 20,
    "timeout_seconds": (1.0, 8.0),
}
NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

#: Seconds kept between a tool's own timeout and the ``timeoutSeconds`` Runway waits:
#: the time the answer needs to travel back to the avatar worker (LiveKit RPC through the
#: SFU: tens of milliseconds; 0.5 s leaves room for a slow hop and a busy event loop).
RPC_DELIVERY_MARGIN = 0.5

_SCALARS = ("string", "integer", "number", "boolean")


class Problem(Exception):
    """A parameter a dialect cannot express; turned into a ToolDefinitionError."""

    def __init__(self, path: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.hint = hint


# ------------------------------------------------------------------ Runway
def humanize(name: str) -> str:
    words = name.strip("_").replace("_", " ").strip() or name
    return words[:1].upper() + words[1:]


def _json_value(value: Any) -> str:
    return json.dumps(value)


def check_name(name: str, what: str, path: str) -> None:
    if not name or len(name) > RUNWAY_LIMITS["name_length"] or not NAME_PATTERN.match(name):
        raise Problem(
            path,
            f"{what} {name!r} is not a valid name: Runway wants 1 to "
            f"{RUNWAY_LIMITS['name_length']} characters matching {NAME_PATTERN.pattern}",
            "use letters, digits and underscores, starting with a letter or underscore "
            "(give a parameter another name, or a Field alias on a nested field)",
        )


def check_description(description: str, path: str) -> str:
    limit = RUNWAY_LIMITS["description_length"]
    if len(description) > limit:
        raise Problem(
            path,
            f"its description is {len(description)} characters long; Runway allows {limit}",
            "shorten the docstring (or the Field description)",
        )
    return description


def _unwrap_nullable(node: dict[str, Any], path: str) -> dict[str, Any]:
    branches = node.get("anyOf") or node.get("oneOf")
    if branches is None:
        return node
    rest = [b for b in branches if b != {"type": "null"}]
    if len(rest) == 1 and len(rest) < len(branches):
        merged = {**rest[0], **{k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}}
        if "description" in node:
            merged["description"] = node["description"]
        return merged
    kinds = sorted({str(b.get("type", "object")) for b in rest})
    if all(b.get("type") == "object" or "properties" in b for b in rest):
        what = "a union of models"
    else:
        what = f"a union of {', '.join(kinds)}"
    raise Problem(
        path,
        f"is {what}, which Runway parameters cannot express",
        "use a single type (Optional[T] is fine), or a Literal/Enum of strings to pick a "
        "variant",
    )


def _runway_param(
    name: str, node: dict[str, Any], required: bool, path: str
) -> dict[str, Any]:
    check_name(name, "parameter", path)
    node = _unwrap_nullable(node, path)
    description = check_description(node.get("description") or humanize(name), path)
    param: dict[str, Any] = {"name": name, "description": description, "required": required}
    values = node.get("enum") if "enum" in node else (
        [node["const"]] if "const" in node else None
    )
    kind = node.get("type")
    if values is not None:
        if not all(isinstance(v, str) for v in values):
            raise Problem(
                path,
                f"has the choices {_json_value(values)}; Runway enums hold strings only",
                "use a Literal of strings or an Enum with string values",
            )
        if len(values) > RUNWAY_LIMITS["enum_values"]:
            raise Problem(
                path,
                f"has {len(values)} choices; Runway allows {RUNWAY_LIMITS['enum_values']}",
                "take a plain string and describe the choices, or split the parameter",
            )
        long = [v for v in values if len(v) > RUNWAY_LIMITS["enum_value_length"]]
        if long:
            raise Problem(
                path,
                f"has the choice {long[0][:40]!r}... longer than "
                f"{RUNWAY_LIMITS['enum_value_length']} characters, Runway's limit",
                "use short codes as choices and explain them in the description",
            )
        param["type"] = "string"
        param["enum"] = list(values)
        return _ordered(param)
    if kind in _SCALARS:
        param["type"] = kind
        return _ordered(param)
    if kind == "array":
        items = node.get("items")
        if not isinstance(items, dict) or not items:
            raise Problem(
                path,
                "is a list without an item type",
                "say what it holds, for example list[str]",
            )
        items = _unwrap_nullable(items, f"{path}[]")
        item_kind = "string" if "enum" in items or "const" in items else items.get("type")
        if item_kind not in _SCALARS:
            what = {"object": "objects", "array": "lists"}.get(str(item_kind), "mixed values")
            raise Problem(
                path,
                f"is a list of {what}; Runway accepts lists of string, integer, number or "
                "boolean only",
                "take parallel lists of scalars, or one parameter per field",
            )
        param["type"] = "array"
        param["items"] = {"type": item_kind}
        return _ordered(param)
    if kind == "object":
        properties = node.get("properties")
        if not isinstance(properties, dict):
            raise Problem(
                path,
                "is a free-form mapping (dict), which Runway parameters cannot express",
                "use a pydantic model, dataclass or TypedDict with named fields",
            )
        limit = RUNWAY_LIMITS["properties_per_object"]
        if len(properties) > limit:
            raise Problem(
                path,
                f"has {len(properties)} fields; Runway allows {limit} per nested object",
                "group some fields into a nested model, or drop the ones the model does not "
                "need to fill",
            )
        needed = set(node.get("required", ()))
        param["type"] = "object"
        param["properties"] = [
            _runway_param(sub, sub_node, sub in needed, f"{path}.{sub}")
            for sub, sub_node in properties.items()
        ]
        return _ordered(param)
    raise Problem(
        path,
        "has no JSON type (is it Any or object?), which Runway parameters cannot express",
        "give it a concrete type: str, int, float, bool, Literal, Enum, list[...] or a model",
    )


def _ordered(param: dict[str, Any]) -> dict[str, Any]:
    order = ("name", "type", "description", "required", "enum", "items", "properties")
    return {k: param[k] for k in order if k in param}


def runway_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    limit = RUNWAY_LIMITS["parameters_per_tool"]
    if len(properties) > limit:
        raise Problem(
            "",
            f"has {len(properties)} parameters; Runway allows {limit} per tool",
            "group related parameters into a pydantic model (one nested parameter), or split "
            "the tool",
        )
    required = set(schema.get("required", ()))
    return [
        _runway_param(name, node, name in required, name) for name, node in properties.items()
    ]
