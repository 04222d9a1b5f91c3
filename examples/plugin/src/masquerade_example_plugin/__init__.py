"""An example third-party masquerade plugin: one tool for every session, one observer.

Installed, masquerade finds it through its entry point (group ``masquerade``)::

    $ pip install ./examples/plugin
    $ masquerade plugins
    NAME           STATUS  SOURCE                     VERSION  HOOKS
    example-audit  loaded  masquerade-example-plugin  0.1.0    register_tools, session_event

* :func:`store_hours` is offered to every session (hook ``masquerade_register_tools``);
* every finished transcript turn, tool call and tool answer, and the end of each session,
  go to an audit trail (hook ``masquerade_session_event``): in memory (:data:`AUDIT`) and,
  when ``MASQUERADE_AUDIT_FILE`` is set, as JSON lines appended to that file.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from masquerade import Session, hookimpl, tool
from masquerade.events import BaseEvent

__all__ = ["AUDIT", "AUDIT_FILE_ENV", "store_hours"]

#: The latest audit records (bounded, so a long-running server does not grow).
AUDIT: deque[dict[str, Any]] = deque(maxlen=1000)
#: Set it to a path to also append every record there as a JSON line.
AUDIT_FILE_ENV = "MASQUERADE_AUDIT_FILE"

HOURS = {
    "monday": "9:00-18:00",
    "tuesday": "9:00-18:00",
    "wednesday": "9:00-18:00",
    "thursday": "9:00-20:00",
    "friday": "9:00-20:00",
    "saturday": "10:00-16:00",
}


@tool
def store_hours(day: str) -> str:
    """Opening hours of the store on a given day.

    Args:
        day: Day of the week, like Saturday.
    """
    hours = HOURS.get(day.strip().lower())
    return f"open {hours}" if hours else "closed"


@hookimpl
def masquerade_register_tools(register: Callable[[Any], None]) -> None:
    register(store_hours)


# Only these events are audited; everything else (audio above all) returns at once.
_AUDITED = frozenset({"transcript.done", "tool.call", "tool.result", "ended"})


@hookimpl
def masquerade_session_event(session: Session, event: BaseEvent) -> Awaitable[None] | None:
    if event.type not in _AUDITED:
        return None
    fields = event.model_dump(exclude={"type", "raw"})
    record = {"session": session.id, "provider": session.provider, "type": event.type, **fields}
    AUDIT.append(record)
    path = os.environ.get(AUDIT_FILE_ENV)
    if not path:
        return None
    # Writing to disk is slow: hand the session an awaitable, which its observer task
    # awaits off the provider's path.
    return anyio.to_thread.run_sync(_append, path, json.dumps(record, default=str))


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(line + "\n")
