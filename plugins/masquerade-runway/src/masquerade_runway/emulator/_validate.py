"""Validation of request bodies, answering the way Runway does: 400 with a zod-style
``{"error": "..."}`` message ("Unrecognized key: livekit", "Too big: expected number to
be <=1800")."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .._request import PRESET_AVATARS

__all__ = ["CreateSessionBody", "validation_message", "ValidationError"]

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PresetAvatar(_Strict):
    type: Literal["runway-preset"]
    presetId: str

    @field_validator("presetId")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in PRESET_AVATARS:
            raise ValueError(
                "Invalid option: expected one of "
                + "|".join(f'"{p}"' for p in sorted(PRESET_AVATARS))
            )
        return value


class CustomAvatar(_Strict):
    type: Literal["custom"]
    avatarId: str = Field(min_length=1)


class ToolParameter(BaseModel):
    # Nested parameters are kept as given; the fields every variant has are checked.
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=64)
    type: Literal["string", "integer", "number", "boolean", "array", "object"]
    description: str = Field(min_length=1, max_length=1024)
    required: bool | None = None
    enum: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=20)


class Tool(_Strict):
    type: Literal["client_event", "backend_rpc"]
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=1024)
    parameters: list[ToolParameter] | None = Field(default=None, max_length=20)
    timeoutSeconds: float | None = Field(default=None, ge=1, le=8)

    @field_validator("name")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("Invalid string: must match pattern /^[a-zA-Z_][a-zA-Z0-9_]*$/")
        return value


class Integration(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["elevenlabs", "livekit"]


class CreateSessionBody(_Strict):
    model: Literal["gwm1_avatars"]
    avatar: Annotated[PresetAvatar | CustomAvatar, Field(discriminator="type")]
    maxDuration: int | None = Field(default=None, ge=1, le=1800)
    personality: str | None = None
    startScript: str | None = None
    tools: list[Tool] | None = Field(default=None, max_length=20)
    integration: Integration | None = None

    @field_validator("tools")
    @classmethod
    def _unique(cls, tools: list[Tool] | None) -> list[Tool] | None:
        names = [t.name for t in tools or ()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"Tool names must be unique: {', '.join(dupes)}")
        return tools


def validation_message(exc: ValidationError) -> str:
    """The first problem, worded like Runway's (zod) messages."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    kind = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"Unrecognized key: {loc[-1]}"
    if kind == "less_than_equal":
        message = f"Too big: expected number to be <={ctx.get('le')}"
    elif kind == "greater_than_equal":
        message = f"Too small: expected number to be >={ctx.get('ge')}"
    elif kind == "too_long":
        message = f"Too big: expected array to have <={ctx.get('max_length')} items"
    elif kind == "string_too_long":
        message = f"Too big: expected string to have <={ctx.get('max_length')} characters"
    elif kind == "string_too_short":
        message = f"Too small: expected string to have >={ctx.get('min_length')} characters"
    elif kind == "missing":
        message = "Invalid input: expected a value, received undefined"
    elif kind in ("literal_error", "union_tag_invalid", "union_tag_not_found"):
        message = f"Invalid input: {err['msg']}"
    elif kind == "value_error":
        message = str(err["msg"]).removeprefix("Value error, ")
    else:
        message = f"Invalid input: {err['msg']}"
    # Top-level fields read like Runway's known messages; nested ones say where.
    return message if len(loc) <= 1 else f"{'.'.join(loc)}: {message}"
