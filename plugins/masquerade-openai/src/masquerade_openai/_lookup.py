"""Finding the OpenAI handle of a running masquerade session: :func:`realtime`."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import anyio

from masquerade import SessionClosed

if TYPE_CHECKING:
    from masquerade import Session

    from ._session import OpenAIRealtimeSession

__all__ = ["realtime", "wait_realtime", "register"]

# Sessions by masquerade session id and by provider session id, for realtime().
_LIVE: weakref.WeakValueDictionary[str, OpenAIRealtimeSession] = weakref.WeakValueDictionary()


def register(key: str, session: OpenAIRealtimeSession) -> None:
    """Make ``session`` findable by ``key`` (a session id) while it lives."""
    _LIVE[key] = session


def realtime(session: Session) -> OpenAIRealtimeSession:
    """The OpenAI-specific handle of a running masquerade session.

    Use it to send text and audio, steer responses and read the conversation store::

        rt = masquerade_openai.realtime(session)
        await rt.send_text("hello")
        item = await rt.next_completed_item()

    Raises :class:`~masquerade.SessionClosed` when the session is not an OpenAI session
    or has not been created at the provider yet.
    """
    found = _LIVE.get(session.id)
    if found is None and session.provider_session_id:
        found = _LIVE.get(session.provider_session_id)
    if found is None:
        raise SessionClosed(
            f"session {session.id} has no OpenAI Realtime connection (provider "
            f"{session.provider!r}, state {session.state!r})",
            hint="call realtime(session) once the session is ready, on a session whose "
            "provider is 'openai'",
        )
    return found


async def wait_realtime(session: Session, timeout: float | None = 30.0) -> OpenAIRealtimeSession:
    """Wait until the session is ready, then return :func:`realtime` of it.

    Use it right after ``host.session(...)``, which returns before the session is
    connected::

        async with host.session(request) as session:
            rt = await masquerade_openai.wait_realtime(session)
            await rt.send_text("hello")

    A browser-frontend session (``transport="webrtc"``) becomes ready only once its call
    exists, so for it this returns as soon as the session was created at the provider,
    in time for ``rt.answer_offer(sdp)``.

    Raises :class:`~masquerade.SessionClosed` when the session has ended (before it was
    ready: with the failure), and :class:`TimeoutError` after ``timeout`` seconds.
    """
    # The session's state, not its events: no subscription, no wake-up per event.
    with anyio.fail_after(timeout):
        while True:
            state = session.state
            if state == "ready" or state == "running":
                return realtime(session)
            if state == "ended":
                break
            key = session.provider_session_id
            found = _LIVE.get(key) if key else None
            if found is not None and found.requires_polling:
                return found  # a browser frontend: waiting for its call
            await session.wait_changed()
    failure = session.result.failure if session.result is not None else None
    when = "has ended" if session.credentials is not None else "ended before it was ready"
    raise SessionClosed(
        f"session {session.id} {when}" + (f": {failure}" if failure else ""),
        hint="see session.result for the failure",
    )
