"""Log output for machines and for the CLI: a JSON formatter and a one-call setup.

::

    import logging
    from masquerade import JsonFormatter, RedactingFilter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logging.getLogger("masquerade").addHandler(handler)

One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, then every
structured field the record carries (``session_id``, ``provider``, ``tool``, ``call_id``,
``duration_ms``...), then ``exception`` when there is one. Every string passes through
the shared redaction, field names that always hold secrets (``token``, ``sessionKey``...)
are masked, and values that are not JSON become their ``str``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from ._redact import RedactingFilter, install_log_redaction, redact, redact_mapping

__all__ = ["JsonFormatter", "configure_logging", "logging_configured", "TEXT_FORMAT"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object per line (see the module docs)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in data:
                data[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = redact(record.exc_text)
        if record.stack_info:
            data["stack"] = redact(self.formatStack(record.stack_info))
        # A round trip through JSON turns every value JSON-ready (str for the rest), so
        # that redaction sees the same text a reader will.
        ready = json.loads(json.dumps(data, default=str))
        return json.dumps(redact_mapping(ready), ensure_ascii=False)


def configure_logging(
    level: str | int | None = None,
    *,
    json_lines: bool = False,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send log records to ``stream`` (stderr) as text or JSON lines, secrets masked.

    The handler goes on the root logger, replacing a handler installed by an earlier call
    (so calling it twice does not duplicate lines). ``websockets`` is never let below INFO
    by this setup: at DEBUG it prints every handshake header. Returns the handler.
    """
    install_log_redaction()
    if level is None:
        level = logging.WARNING
    resolved = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(resolved, int):
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_masquerade", False):
            root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter())
    handler._masquerade = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(resolved)
    logging.getLogger("websockets").setLevel(max(logging.INFO, root.level))
    return handler


@contextmanager
def logging_configured(
    level: str | int | None = None, *, json_lines: bool = False
) -> Iterator[None]:
    """:func:`configure_logging` for the duration of a block (what the CLI does), then
    the handler is removed and the levels it changed are restored, so that calling the
    CLI in-process (tests, notebooks) leaves logging as it found it."""
    root, websockets = logging.getLogger(), logging.getLogger("websockets")
    levels = root.level, websockets.level
    handler = configure_logging(level, json_lines=json_lines)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        websockets.setLevel(levels[1])
