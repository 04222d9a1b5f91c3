"""Built-in ``logging`` plugin: session lifecycle, tool calls and errors as log records.

Records go to the standard :mod:`logging` module under ``masquerade.session`` with
structured ``extra`` fields, so that a JSON formatter (:class:`masquerade.JsonFormatter`,
or ``masquerade --log-json``) emits them as fields:

================  ==========================================================
field             on
================  ==========================================================
``session_id``    every record (masquerade's id, ``ses_...``)
``provider``      every record; ``provider_session_id`` once the provider has one
``event_type``    the event the record is about (``status``, ``tool.result``...)
``tool``          tool calls and results, with ``call_id``
``duration_ms``   tool results; ``duration_s`` on ``ended``
``error_type``    failed tool calls; ``code`` on errors
================  ==========================================================

Levels: lifecycle (provisioning, queued, ready, ended) and tool answers at INFO, failed
tools and non-fatal errors at WARNING, fatal errors and failed sessions at ERROR,
responses, barge-ins and the final summary at DEBUG. Audio deltas and transcript deltas
are never logged one by one, and transcripts only at DEBUG with content capture on
(``MASQUERADE_CAPTURE_CONTENT=1``). Messages pass through the shared redaction.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from .._redact import redact
from ..events import EVENT_TYPES
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..events import BaseEvent
    from ..session import Session, SessionResult

__all__ = ["logger"]

logger = logging.getLogger("masquerade.session")

# Event types worth a log record at INFO or above, and those logged at DEBUG only;
# everything else (audio, deltas, provider events) is skipped with one set lookup, which
# keeps this observer cheap on the hot path.
_INFO = frozenset({"status", "ready", "tool.call", "tool.result", "error", "ended", "client_event"})
_DEBUG = frozenset({"response.done", "speech.started", "transcript.done"})
_LOGGED = _INFO | _DEBUG


def _capture_content() -> bool:
    return os.environ.get("MASQUERADE_CAPTURE_CONTENT", "").strip().lower() in (
        "1", "true", "yes", "on",
    )


@hookimpl
def masquerade_session_event(session: Session, event: BaseEvent) -> None:
    kind = event.type
    if kind not in _LOGGED:
        return  # not even called for the known types it skips (masquerade_ignores)
    if not logger.isEnabledFor(logging.INFO if kind in _INFO else logging.DEBUG):
        return
    extra: dict[str, Any] = {
        "session_id": session.id,
        "provider": session.provider,
        "event_type": kind,
    }
    if session.provider_session_id is not None:
        extra["provider_session_id"] = session.provider_session_id
    data = event.__dict__
    sid = session.id
    if kind == "status":
        extra["state"] = data["state"]
        if data["provider_status"]:
            extra["provider_status"] = data["provider_status"]
        if data["queued"]:
            extra["queued"] = True
            logger.info(
                "session %s queued for capacity (%s)", sid, data["provider_status"], extra=extra
            )
        elif data["provider_status"]:
            logger.info(
                "session %s %s: provider status %s", sid, data["state"], data["provider_status"],
                extra=extra,
            )
        else:
            logger.info("session %s %s", sid, data["state"], extra=extra)
    elif kind == "ready":
        # Never the credentials: they are the frontend's join secrets.
        extra["waited_s"] = data["waited_s"]
        logger.info("session %s ready after %ss", sid, data["waited_s"], extra=extra)
    elif kind == "tool.call":
        extra.update(tool=data["name"], call_id=data["call_id"])
        logger.info("session %s tool call %s (%s)", sid, data["name"], data["call_id"],
                    extra=extra)
    elif kind == "tool.result":
        extra.update(
            tool=data["name"], call_id=data["call_id"], duration_ms=round(data["duration_ms"], 3)
        )
        if data["error"] is None:
            logger.info(
                "session %s tool %s answered in %.1fms", sid, data["name"], data["duration_ms"],
                extra=extra,
            )
        else:
            extra["error_type"] = data["error_type"]
            logger.warning(
                "session %s tool %s failed (%s) after %.1fms: %s", sid, data["name"],
                data["error_type"], data["duration_ms"], redact(data["error"]), extra=extra,
            )
    elif kind == "client_event":
        extra["client_event"] = data["name"]
        logger.info("session %s client event %s", sid, data["name"], extra=extra)
    elif kind == "error":
        extra.update(code=data["code"], fatal=data["fatal"])
        level = logging.ERROR if data["fatal"] else logging.WARNING
        logger.log(
            level, "session %s %serror %s: %s", sid, "fatal " if data["fatal"] else "",
            data["code"], redact(data["message"]), extra=extra,
        )
    elif kind == "ended":
        extra.update(outcome=data["outcome"], reason=data["reason"], duration_s=data["duration_s"])
        if data["failure_code"]:
            extra["failure_code"] = data["failure_code"]
        if data["outcome"] == "failed":
            logger.error(
                "session %s failed (%s) after %ss: %s", sid, data["reason"], data["duration_s"],
                redact(data["failure"] or data["failure_code"] or "no detail"), extra=extra,
            )
        else:
            logger.info(
                "session %s ended %s (%s) after %ss", sid, data["outcome"], data["reason"],
                data["duration_s"], extra=extra,
            )
    elif kind == "response.done":
        extra.update(response_id=data["response_id"], status=data["status"])
        if data["usage"]:
            extra["usage"] = data["usage"]
        logger.debug(
            "session %s response %s %s%s", sid, data["response_id"], data["status"],
            f" ({data['reason']})" if data["reason"] else "", extra=extra,
        )
    elif kind == "speech.started":
        logger.debug("session %s user started speaking", sid, extra=extra)
    elif kind == "transcript.done":
        extra.update(role=data["role"], turn=data["turn"])
        if _capture_content():
            logger.debug("session %s %s: %s", sid, data["role"], redact(data["text"]), extra=extra)
        else:
            logger.debug(
                "session %s %s turn done (%d chars)", sid, data["role"], len(data["text"]),
                extra=extra,
            )


# Skipped types (audio and text deltas, provider events...) are not even called for.
masquerade_session_event.masquerade_ignores = frozenset(EVENT_TYPES) - _LOGGED  # type: ignore[attr-defined]


@hookimpl
def masquerade_session_ended(session: Session, result: SessionResult) -> None:
    if not logger.isEnabledFor(logging.DEBUG):
        return
    extra: dict[str, Any] = {
        "session_id": session.id,
        "provider": session.provider,
        "outcome": result.outcome,
        "turns": len(result.transcript),
        "tool_calls": len(result.tool_calls),
        "dropped_audio": result.dropped_audio,
    }
    if result.usage:
        extra["usage"] = result.usage
    logger.debug(
        "session %s result: %d turns, %d tool calls, %d audio deltas dropped",
        session.id, len(result.transcript), len(result.tool_calls), result.dropped_audio,
        extra=extra,
    )
