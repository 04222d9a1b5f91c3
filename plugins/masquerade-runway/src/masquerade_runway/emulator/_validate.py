"""Validation answering the way Runway does: 400 with a zod-style ``{"error": "..."}``
message ("Unrecognized key: livekit", "Too big: expected number to be <=1800", "Invalid
input: expected number, received string"), never pydantic's wording.

The request bodies themselves are in ``_bodies``; this module turns a pydantic
:class:`ValidationError` into the API's message and holds the shared building blocks.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "Strict",
    "ValidationError",
    "ApiError",
    "validation_message",
    "parse_body",
    "check_name",
    "NAME_PATTERN",
]

NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

ModelT = TypeVar("ModelT", bound=BaseModel)


class Strict(BaseModel):
    """Unknown keys are refused and nothing is coerced ("60" is not a number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ApiError(Exception):
    """A request the API refuses: ``status`` (400, 404...) and the API's ``message``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def check_name(value: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError("Invalid string: must match pattern /^[a-zA-Z_][a-zA-Z0-9_]*$/")
    return value


def parse_body(model: type[ModelT], raw: bytes) -> ModelT:
    """``raw`` (a JSON request body) as ``model``, or :class:`ApiError` with the API's
    message."""
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        raise ApiError("Invalid JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(f"Invalid input: expected object, received {_js_type(data)}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(validation_message(exc)) from None


def _js_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# pydantic error type -> the type zod names in "expected <type>".
_EXPECTED = {
    "string_type": "string",
    "int_type": "int",
    "int_from_float": "int",
    "int_parsing": "int",
    "float_type": "number",
    "float_parsing": "number",
    "bool_type": "boolean",
    "bool_parsing": "boolean",
    "list_type": "array",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
}
# Required fields whose type is not a string, for "expected <type>, received undefined".
_MISSING_TYPES = {
    "avatar": "object",
    "voice": "object",
    "items": "object",
    "properties": "array",
    "timeoutSeconds": "number",
}


#: Bound errors: the message template and the ``ctx`` key of the bound.
_BOUNDS: dict[str, tuple[str, str]] = {
    "less_than_equal": ("Too big: expected number to be <={}", "le"),
    "greater_than_equal": ("Too small: expected number to be >={}", "ge"),
    "too_long": ("Too big: expected array to have <={} items", "max_length"),
    "too_short": ("Too small: expected array to have >={} items", "min_length"),
    "string_too_long": ("Too big: expected string to have <={} characters", "max_length"),
    "string_too_short": ("Too small: expected string to have >={} characters", "min_length"),
}


def validation_message(exc: ValidationError) -> str:
    """The first problem, worded like Runway's (zod) messages; nested problems say where
    (``tools.0.parameters.1.name: ...``)."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    # Discriminated unions add the tag to the path (tools.0.backend_rpc.name): drop it.
    loc = [
        p
        for i, p in enumerate(loc)
        if not (p in _TAGS and i and (loc[i - 1].isdigit() or loc[i - 1] in _UNIONS))
    ]
    kind = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    if kind == "extra_forbidden":
        message = f"Unrecognized key: {loc[-1]}"
        loc = loc[:-1]
        return message if not loc else f"{'.'.join(loc)}: {message}"
    if kind == "missing":
        expected = _MISSING_TYPES.get(loc[-1] if loc else "", "string")
        message = f"Invalid input: expected {expected}, received undefined"
    elif kind in _EXPECTED:
        message = f"Invalid input: expected {_EXPECTED[kind]}, received {_js_type(err['input'])}"
    elif kind in _BOUNDS:
        template, limit = _BOUNDS[kind]
        message = template.format(ctx.get(limit))
    elif kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", '"').replace(" or ", "|")
        message = f"Invalid input: expected {expected}"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        message = "Invalid input"
    elif kind == "value_error":
        message = str(err["msg"]).removeprefix("Value error, ")
    else:
        message = "Invalid input"
    # Top-level fields read like Runway's known messages; nested ones say where.
    return message if len(loc) <= 1 else f"{'.'.join(loc)}: {message}"


# Fields holding a discriminated union (their elements' tags are dropped from paths).
_UNIONS = frozenset({"avatar", "integration", "voice"})
# Tags of the discriminated unions in ``_bodies`` (pydantic puts them in error paths).
_TAGS = frozenset(
    {
        "runway-preset",
        "custom",
        "client_event",
        "backend_rpc",
        "string",
        "integer",
        "number",
        "boolean",
        "array",
        "object",
        "livekit",
        "elevenlabs",
        "runway-live-preset",
    }
)
