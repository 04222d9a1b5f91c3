"""Built-in ``logging`` plugin: session lifecycle, tool calls and errors as log records.

Records go to the standard :mod:`logging` module under ``masquerade.session`` with
structured ``extra`` fields (``session_id``, ``provider``, ``tool``, ``call_id``,
``duration_ms``) so that a JSON formatter can emit them as fields. Audio deltas and
transcript deltas are never logged one by one. Messages pass through the shared
redaction, so no key or token reaches a log line.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .._redact import redact
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..events import BaseEvent
    from ..session import Session, SessionResult

logger = logging.getLogger("masquerade.session")

# Event types worth a log record; everything else (audio, deltas, provider) is skipped
# with one set lookup, which keeps this observer cheap on the hot path.
_LOGGED = frozenset({"status", "ready", "tool.call", "tool.result", "error", "ended", "client_event"})


@hookimpl
def masquerade_session_event(session: Session, event: BaseEvent) -> None:
    kind = event.type
    if kind not in _LOGGED or not logger.isEnabledFor(logging.INFO):
        return
    extra: dict[str, object] = {
        "session_id": session.id,
        "provider": session.provider,
        "provider_session_id": session.provider_session_id,
        "event_type": kind,
    }
    data = event.__dict__
    if kind == "status":
        extra["state"] = data["state"]
        detail = data["provider_status"] or ""
        queued = " (queued)" if data["queued"] else ""
        logger.info("session %s %s%s %s", session.id, data["state"], queued, detail, extra=extra)
    elif kind == "ready":
        logger.info("session %s ready after %ss", session.id, data["waited_s"], extra=extra)
    elif kind == "tool.call":
        extra.update(tool=data["name"], call_id=data["call_id"])
        logger.info("session %s tool call %s", session.id, data["name"], extra=extra)
    elif kind == "tool.result":
        extra.update(
            tool=data["name"], call_id=data["call_id"], duration_ms=round(data["duration_ms"], 3)
        )
        if data["error"] is None:
            logger.info(
                "session %s tool %s answered in %.1fms",
                session.id, data["name"], data["duration_ms"], extra=extra,
            )
        else:
            extra["error_type"] = data["error_type"]
            logger.warning(
                "session %s tool %s failed (%s): %s",
                session.id, data["name"], data["error_type"], redact(data["error"]), extra=extra,
            )
    elif kind == "client_event":
        logger.info("session %s client event %s", session.id, data["name"], extra=extra)
    elif kind == "error":
        extra["code"] = data["code"]
        level = logging.ERROR if data["fatal"] else logging.WARNING
        logger.log(level, "session %s error %s: %s", session.id, data["code"],
                   redact(data["message"]), extra=extra)
    elif kind == "ended":
        extra.update(outcome=data["outcome"], duration_s=data["duration_s"])
        logger.info(
            "session %s ended %s (%s) after %ss",
            session.id, data["outcome"], data["reason"], data["duration_s"], extra=extra,
        )


@hookimpl
def masquerade_session_ended(session: Session, result: SessionResult) -> None:
    logger.debug(
        "session %s result: %d turns, %d tool calls",
        session.id, len(result.transcript), len(result.tool_calls),
        extra={"session_id": session.id, "provider": session.provider},
    )
