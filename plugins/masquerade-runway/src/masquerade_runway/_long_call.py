"""Calls longer than Runway lets a session last.

Runway ends a realtime session after about 300 seconds, whatever ``maxDuration`` says
(:data:`~masquerade_runway.PRACTICAL_DURATION`); the avatar simply leaves, mid-sentence.
A node chooses what happens instead, with ``options={"long_call": ...}``:

``"none"`` (default)
    nothing: Runway ends the call at its cap (the result says ``completed``).
``"end"``
    end the call cleanly ``cap_margin`` seconds before the cap: masquerade sends
    ``END_CALL`` itself, the result is ``completed`` with
    ``extra["long_call"] == "ended_before_cap"``, and a ``provider`` event named
    ``long_call`` (``{"action": "end", ...}``) comes first, so your app can tell the user.
``"continue"``
    at the same point, start a new Runway session with the same avatar and tools, whose
    personality carries the transcript so far; the frontend gets the new session's
    credentials in a second ``ready`` event (``AvatarNode(on_ready=...)`` is called again)
    and the old session is ended. The result joins every segment's transcript
    (``extra["segments"]`` lists the session ids, ``extra["long_call"] == "continued"``).
    If the new session cannot be started, the call ends as with ``"end"``.

``call_cap`` (seconds, default 300) and ``cap_margin`` (default 15) set the point, counted
from when the backend joined the session's room; ``continue_script`` is the new
segment's opening line. The policy needs the backend in the room (the default).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio

from masquerade import ConfigurationError
from masquerade.events import ErrorEvent, ProviderEvent, ReadyEvent

from ._errors import RunwayError
from ._request import PRACTICAL_DURATION, build_session_body

if TYPE_CHECKING:
    from masquerade import Session

    from ._session import RunwaySession

__all__ = ["LongCallPolicy", "continue_call", "LONG_CALL_OPTIONS"]

logger = logging.getLogger("masquerade.runway")

#: The session options of the policy (see the module docs).
LONG_CALL_OPTIONS = ("long_call", "call_cap", "cap_margin", "continue_script")
DEFAULT_MARGIN = 15.0
DEFAULT_CONTINUE_SCRIPT = "Sorry, the line dropped for a second. Let's go on where we were."


@dataclass(frozen=True)
class LongCallPolicy:
    """What to do before Runway's cap ends a call (see the module docs)."""

    action: Literal["end", "continue"]
    cap: float = float(PRACTICAL_DURATION)
    margin: float = DEFAULT_MARGIN
    continue_script: str | None = DEFAULT_CONTINUE_SCRIPT

    @property
    def budget(self) -> float:
        """Seconds a segment runs before the policy acts."""
        return self.cap - self.margin

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> LongCallPolicy | None:
        """The policy ``options`` ask for (``None`` for ``"none"``); raises
        :class:`~masquerade.ConfigurationError` for values that make no sense."""
        action = options.get("long_call", "none")
        if action not in ("none", "end", "continue"):
            raise ConfigurationError(
                f"options['long_call'] is {action!r}", hint="use 'none', 'end' or 'continue'"
            )
        cap = float(options.get("call_cap", PRACTICAL_DURATION))
        margin = float(options.get("cap_margin", min(DEFAULT_MARGIN, cap / 4)))
        if not 0 <= margin < cap:
            raise ConfigurationError(
                f"cap_margin {margin:g}s must be at least 0 and less than call_cap {cap:g}s",
                hint="e.g. call_cap=300, cap_margin=15: act 15 s before Runway's cap",
            )
        if action == "none":
            return None
        if options.get("backend") is False:
            raise ConfigurationError(
                f"long_call={action!r} needs the backend in the room",
                hint="drop backend=False, or long_call",
            )
        script = options.get("continue_script", DEFAULT_CONTINUE_SCRIPT)
        return cls(action, cap, margin, script)

    def personality(self, original: str | None, heard: Sequence[tuple[str, str]]) -> str:
        """The next segment's personality: the original one plus the conversation so far."""
        lines = "\n".join(f"{role}: {text}" for role, text in heard) or "(nothing was said)"
        context = (
            "This conversation continues an earlier part that reached its time limit. Do "
            "not greet again; go on from where it stopped. The conversation so far:\n" + lines
        )
        return f"{original}\n\n{context}" if original else context


async def continue_call(runway: RunwaySession, session: Session, policy: LongCallPolicy) -> bool:
    """Move the call to a new Runway session (see the module docs); return False (and
    leave everything as it was) when the new session could not be started."""
    body = build_session_body(runway.request, runway.tools)
    body["personality"] = policy.personality(runway.request.personality, runway.heard)
    if policy.continue_script:
        body["startScript"] = policy.continue_script
    else:
        body.pop("startScript", None)
    client = runway.client
    new_id: str | None = None
    try:
        with anyio.fail_after(runway.request.provisioning_timeout):
            new_id = await client.create_realtime_session(body)
            delay = 0.05
            while True:
                status = await client.retrieve_realtime_session(new_id)
                if status.status in ("READY", "RUNNING"):
                    break
                if status.terminal:
                    raise RunwayError(f"the new session ended while provisioning: {status.status}")
                await anyio.sleep(delay)
                delay = min(delay * 2, 1.0)
    except (RunwayError, TimeoutError) as exc:
        session.emit(
            ErrorEvent(
                code="long_call_continue_failed",
                message=f"could not continue the call in a new session: {exc}; ending it",
                fatal=False,
            )
        )
        if new_id is not None:
            try:
                await client.delete_realtime_session(new_id)
            except RunwayError as delete_error:
                logger.warning("could not cancel session %s: %s", new_id, delete_error)
        return False
    old_id = runway.id
    await runway.switch_to(new_id)
    credentials = await runway.join_credentials()
    session.emit(
        ProviderEvent(
            name="long_call",
            payload={"action": "continue", "from": old_id, "to": new_id, "after_s": policy.budget},
        )
    )
    session.emit(ReadyEvent(credentials=credentials))
    return True
