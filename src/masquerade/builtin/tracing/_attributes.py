"""What goes on a span: content as redacted JSON, exceptions with redacted messages."""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry.trace import Span

from ..._redact import redact, redact_mapping

try:
    VERSION = version("masquerade")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    VERSION = "0.0.0"


def env_flag(environ: Mapping[str, str], key: str) -> bool:
    return environ.get(key, "").strip().lower() in ("1", "true", "yes", "on")


def as_json(value: Any) -> str:
    """Content as a redacted JSON string (span attributes cannot hold structures)."""
    return json.dumps(redact_mapping(_jsonable(value)), ensure_ascii=False, default=str)


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


def text_messages(role: str, texts: list[str]) -> str:
    return as_json([{"role": role, "parts": [{"type": "text", "content": t}]} for t in texts])


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def error_class(error: str | None) -> str | None:
    if not error:
        return None
    head = error.split(":", 1)[0].strip()
    return head if head.isidentifier() else None


def record_exception(span: Span, exc: BaseException) -> None:
    """``span.record_exception`` with the message and traceback redacted."""
    span.add_event(
        "exception",
        {
            "exception.type": type(exc).__qualname__,
            "exception.message": redact(str(exc)),
            "exception.stacktrace": redact(
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            ),
        },
    )
