"""One Runway realtime session, driven by :class:`masquerade.Session`.

Lifecycle (see :mod:`masquerade.provider`):

* ``poll`` -- ``GET /v1/realtime_sessions/{id}`` -> ``ProvisioningStatus``;
* ``join_credentials`` -- ``{sessionId, sessionKey}``, or with ``consume=True`` the LiveKit
  ``{url, token, roomName}`` from one ``consume`` call;
* ``connect`` -- ``connect_backend``, join the room, answer ``backend_rpc`` tools over RPC,
  turn data messages into events, until the room is gone;
* ``end`` -- ``END_CALL`` over the room (the session ends COMPLETED); ``DELETE`` when the
  room is gone or that fails (CANCELLED);
* ``result`` -- ``GET /v1/avatar_conversations/{id}`` -> ``ProviderOutcome``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import anyio
from pydantic import SecretStr

from masquerade import (
    JoinCredentials,
    ProviderOutcome,
    ProvisioningStatus,
    TranscriptTurn,
    register_session_secret,
)
from masquerade.events import BaseEvent, ErrorEvent, ProviderEvent, Role, TranscriptDone
from masquerade.provider import ProvisioningState

from ._client import RunwayClient
from ._emulator_room import EmulatorRoom
from ._errors import RunwayError, RunwayNotFound, RunwayProtocolError
from ._integration import LiveKitIntegration
from ._long_call import LongCallPolicy, continue_call
from ._messages import MessageTranslator
from ._models import AvatarConversation, RealtimeSession, RoomCredentials
from ._request import session_integration
from ._room import DataMessage, Room, RoomError
from ._tool_rpc import WORKER_PREFIX, ToolEndpoint

if TYPE_CHECKING:
    from masquerade import Session, SessionRequest

__all__ = ["RunwaySession", "SessionOwner", "END_CALL", "WORKER_PREFIX", "make_room"]

logger = logging.getLogger("masquerade.runway")

#: The data message that ends a call as if the user hung up (the session ends COMPLETED).
END_CALL = b'{"type":"END_CALL"}'

_STATES: Mapping[str, ProvisioningState] = {
    "NOT_READY": "not_ready",
    "READY": "ready",
    "RUNNING": "running",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}
_OUTCOMES: Mapping[str, Literal["completed", "failed", "cancelled"]] = {
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}


class SessionOwner(Protocol):
    """What a :class:`RunwaySession` needs from the provider that created it (the
    :class:`~masquerade_runway.RunwayProvider` is one): its timings, and a way to hand
    back the shared REST client when the session is done."""

    @property
    def end_grace(self) -> float: ...
    @property
    def result_wait(self) -> float: ...
    @property
    def monitor_interval(self) -> float: ...
    @property
    def room(self) -> str | None: ...

    async def release_client(self, client: RunwayClient) -> None: ...


def make_room(kind: str) -> Room:
    """A new room of ``kind`` (``"livekit"`` or ``"emulator"``)."""
    if kind == "emulator":
        return EmulatorRoom()
    if kind == "livekit":
        # The LiveKit RTC SDK is a native library: only load it when a session uses it.
        from ._livekit import LiveKitRoom

        return LiveKitRoom()
    raise ValueError(f"unknown room kind {kind!r}")




class RunwaySession:
    """A Runway realtime session (implements :class:`masquerade.ProviderSession`)."""

    requires_polling = True

    def __init__(
        self,
        provider: SessionOwner,
        client: RunwayClient,
        session_id: str,
        request: SessionRequest,
        tools: Sequence[Mapping[str, Any]],
    ) -> None:
        self.provider = provider
        self.client = client
        self.id = session_id
        self.request = request
        self.tools = [dict(t) for t in tools]
        options = request.options
        self.integration = session_integration(request)
        self.consume = bool(options.get("consume", False))
        # With an integration your own agent owns the conversation: nothing to answer.
        self.backend = bool(options.get("backend", self.integration is None))
        self.room_kind: str | None = options.get("room") or provider.room
        self.status: RealtimeSession | None = None
        self._session_key: SecretStr | None = None
        self._expires_at: str | None = None
        self._credentials: JoinCredentials | None = None
        self._room: Room | None = None
        self._translator: MessageTranslator | None = None
        self._ended = False
        self._released = False
        #: Re-attached by ``RunwayProvider.resume`` (after the process that ran it died).
        self.resumed = False
        self._owner: Session | None = None
        self._dropped_data = 0
        #: What the cancel path did: ``"end_call"``, ``"delete"`` or ``"none"``.
        self.ended_with: str | None = None
        #: What to do before Runway's cap on a call's length (see ``_long_call``).
        self.long_call = LongCallPolicy.from_options(options)
        #: The Runway sessions this call ran in, in order (more than one once continued).
        self.segments = [session_id]
        #: Finished turns heard so far, ``(role, text)`` (the context of a next segment).
        self.heard: list[tuple[str, str]] = []
        self.long_call_outcome: str | None = None

    def __repr__(self) -> str:
        status = self.status.status if self.status else None
        return f"<RunwaySession {self.id} status={status!r}>"

    # ------------------------------------------------------------------ provisioning
    async def _retrieve(self) -> RealtimeSession:
        status = await self.client.retrieve_realtime_session(self.id)
        self.status = status
        if status.session_key is not None:
            self._session_key = status.session_key
            self._expires_at = status.expires_at
        return status

    async def poll(self) -> ProvisioningStatus:
        status = await self._retrieve()
        if status.status == "READY" and status.session_key is None:
            raise RunwayProtocolError(
                f"Runway reported session {self.id} READY without a sessionKey",
                hint="the frontend cannot join without it; the session is cancelled. Report "
                "it to Runway if it happens again",
            )
        state = _STATES.get(status.status)
        if state is None:
            logger.warning("session %s has an unknown status %r", self.id, status.status)
            state = "not_ready"
        return ProvisioningStatus(
            state=state,
            queued=bool(status.queued),
            provider_status=status.status,
            failure=status.failure,
            failure_code=status.failure_code,
        )

    async def join_credentials(self) -> JoinCredentials | None:
        if self._credentials is not None:
            return self._credentials
        if isinstance(self.integration, LiveKitIntegration):
            # The frontend joins your own LiveKit room, where the avatar publishes (the
            # session may already be RUNNING: the avatar joins that room by itself).
            public = {
                "sessionId": self.id,
                "url": self.integration.url,
                "roomName": self.integration.room_name,
            }
            self._credentials = JoinCredentials(
                provider="runway", kind="integration", public=public
            )
            return self._credentials
        key = self._session_key
        if key is None and self.resumed:
            return None  # re-attached while running or after its end: the frontend is in
        if key is None:
            raise RunwayProtocolError(
                f"session {self.id} was never seen READY, so its sessionKey is unknown",
                hint="another client may have consumed it; start a new session",
            )
        if self.consume:
            room = await self.client.consume_realtime_session(self.id, key.get_secret_value())
            public = {"sessionId": self.id, "url": room.url, "roomName": room.room_name}
            self._credentials = JoinCredentials(
                provider="runway", kind="livekit", public=public, secrets={"token": room.token}
            )
        else:
            public = {"sessionId": self.id}
            if self._expires_at:
                public["expiresAt"] = self._expires_at
            self._credentials = JoinCredentials(
                provider="runway", kind="session_key", public=public, secrets={"sessionKey": key}
            )
        return self._credentials

    # ------------------------------------------------------------------ the call
    def _choose_room(self, credentials: RoomCredentials) -> str:
        kind = self.room_kind or credentials.room_transport or "livekit"
        if kind not in ("livekit", "emulator"):
            raise RunwayProtocolError(
                f"unknown room kind {kind!r}", hint="use room='livekit' or room='emulator'"
            )
        return kind

    def _on_data(self, message: DataMessage) -> None:
        translator = self._translator
        if translator is None:
            return
        sender = message.sender
        if sender is None or not sender.startswith(WORKER_PREFIX):
            # Transcripts and client events speak for the avatar: only its worker may send
            # them (the rule RPC applies). Anyone else's message is recorded and dropped.
            self._dropped_data += 1
            if self._owner is not None:
                self._owner.emit(
                    ErrorEvent(
                        code="data_unauthorized",
                        message=f"ignored a data message from {sender!r}: only the avatar "
                        f"worker ({WORKER_PREFIX}...) may send transcripts and client events",
                        raw=bytes(message.payload[:2000]).decode("utf-8", "replace"),
                    )
                )
            return
        translator.feed(message.payload, sender)

    async def connect(self, session: Session) -> None:
        if self.resumed and self.status is not None and self.status.terminal:
            return  # re-attached after the call ended: result() collects it
        if not self.backend:
            await self._follow_status()
            return
        self._owner = session
        while True:
            room = await self._join(session)
            policy = self.long_call
            if policy is None:
                await self._until_closed(room)
                return
            with anyio.move_on_after(policy.budget) as timer:
                await self._until_closed(room)
            if not timer.cancelled_caught:
                return  # the call ended by itself
            if policy.action == "continue" and await continue_call(self, session, policy):
                self.long_call_outcome = "continued"
                continue
            session.emit(
                ProviderEvent(
                    name="long_call",
                    payload={"action": "end", "session_id": self.id, "after_s": policy.budget},
                )
            )
            self.long_call_outcome = "ended_before_cap"
            return  # the cancel path ends the call with END_CALL: COMPLETED

    async def _join(self, session: Session) -> Room:
        credentials = await self.client.connect_backend(self.id)
        register_session_secret(credentials.token.get_secret_value())
        room = make_room(self._choose_room(credentials))
        self._translator = MessageTranslator(self._heard_and_emitted)
        for tool in self.tools:
            if tool.get("type") == "backend_rpc":
                timeout = float(tool.get("timeoutSeconds") or 4.0)
                room.register_rpc_method(
                    str(tool["name"]), ToolEndpoint(session, str(tool["name"]), timeout)
                )
        room.on_data(self._on_data)
        if isinstance(room, EmulatorRoom):
            # LiveKit delivers data from its SDK's callbacks and cannot be paused; Runway's
            # data messages are a few transcripts and client events per second.
            room.pause = session.backpressure
        try:
            await room.connect(credentials.url, credentials.token.get_secret_value())
        except RoomError as exc:
            raise RunwayError(
                f"could not join session {self.id}'s room: {exc}",
                retryable=False,
                hint="check that the network allows WebRTC/websockets to the room's URL",
            ) from None
        self._room = room
        return room

    async def _until_closed(self, room: Room) -> None:
        try:
            await room.wait_closed()
        finally:
            if self._translator is not None:
                self._translator.transcripts.flush()

    def _heard_and_emitted(self, event: BaseEvent) -> None:
        if isinstance(event, TranscriptDone) and event.text:
            self.heard.append((event.role, event.text))
        owner = self._owner
        if owner is not None:
            owner.emit(event)

    async def switch_to(self, session_id: str) -> None:
        """Make ``session_id`` (READY) this call's session, ending the current one."""
        try:
            await self._end_current("the call continues in session " + session_id)
        except RunwayError as exc:
            if self._owner is not None:
                self._owner.emit(ErrorEvent(code="end_failed", message=exc.message, fatal=False))
        self.id = session_id
        self.segments.append(session_id)
        self.status = self._session_key = self._expires_at = self._credentials = None
        self.ended_with = None
        await self._retrieve()

    async def _follow_status(self) -> None:
        # Without a backend participant, the call is over when Runway says so.
        interval = self.provider.monitor_interval
        while True:
            status = await self._retrieve()
            if status.terminal:
                return
            await anyio.sleep(interval)

    # ------------------------------------------------------------------ ending
    async def _known_terminal(self, *, refresh: bool) -> bool:
        if self.status is not None and self.status.terminal:
            return True
        if not refresh:
            return False
        try:
            return (await self._retrieve()).terminal
        except RunwayNotFound:
            return True  # nothing left to end
        except RunwayError as exc:
            logger.info("could not read the status of session %s: %s", self.id, exc.message)
            return False

    async def _wait_terminal(self, seconds: float, *, once: bool = False) -> bool:
        with anyio.move_on_after(seconds):
            delay = 0.02
            while True:
                if await self._known_terminal(refresh=True):
                    return True
                if once:
                    return False
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.5)
        return False

    async def end(self, reason: str) -> None:
        """End the session at Runway within ``request.end_timeout``: ``END_CALL`` over
        the room, then ``DELETE`` retried with backoff until the budget is spent. Status
        probes get a small slice of the budget each, so a stalled ``GET`` never starves
        the ``DELETE``. Raises :class:`RunwayError` when the session could not be ended."""
        if self._ended:
            return
        self._ended = True
        await self._end_current(reason)

    async def _end_current(self, reason: str) -> None:
        budget = self.request.end_timeout
        deadline = anyio.current_time() + budget * 0.9
        probe = min(2.0, budget * 0.15)
        room, self._room = self._room, None
        sent_end_call = ended = False
        grace = min(self.provider.end_grace, budget * 0.4)
        if room is not None:
            if room.connected and not await self._known_terminal(refresh=False):
                with anyio.move_on_after(probe):
                    try:
                        await room.publish_data(END_CALL)
                        sent_end_call = True
                    except RoomError as exc:
                        logger.info("END_CALL for session %s failed: %s", self.id, exc)
            if sent_end_call:
                # Leave the room only once Runway recorded the end: closing the connection
                # at once could drop END_CALL on its way (and an unread socket resets).
                ended = await self._wait_terminal(grace)
            with anyio.CancelScope(shield=True) as scope:
                scope.deadline = anyio.current_time() + probe
                await room.disconnect()
        if sent_end_call:
            self.ended_with = "end_call"
            if ended:
                return
            logger.warning(
                "session %s did not end within %.1fs of END_CALL; cancelling it", self.id, grace
            )
        elif room is not None and await self._wait_terminal(
            min(1.0, self.provider.end_grace, budget * 0.2)
        ):
            # The room closed by itself (the user hung up, or the session hit its limit)
            # and Runway recorded the end: nothing to cancel.
            self.ended_with = "none"
            return
        if await self._wait_terminal(probe, once=True):
            self.ended_with = self.ended_with or "none"
            return
        await self._delete(reason, deadline)

    async def _delete(self, reason: str, deadline: float) -> None:
        delay = 0.05
        failure = "the end budget ran out before DELETE was answered"
        while anyio.current_time() < deadline:
            done = False
            with anyio.move_on_after(deadline - anyio.current_time()):
                try:
                    await self.client.delete_realtime_session(self.id)
                    done = True
                except RunwayNotFound:
                    done = True  # already gone
                except RunwayError as exc:
                    failure = exc.message
                    if not exc.retryable:
                        break
            if done:
                self.ended_with = "delete"
                logger.info("cancelled session %s (%s)", self.id, reason)
                return
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                break
            await anyio.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
        self.ended_with = "unended"
        raise RunwayError(
            f"could not end session {self.id} at Runway: {failure}",
            retryable=True,
            hint="the session may still be running (and billing) at Runway; it ends at its "
            "max_duration. Check the dashboard, or DELETE it with the session id",
        )

    # ------------------------------------------------------------------ result
    async def result(self) -> ProviderOutcome:
        try:
            return await self._result()
        finally:
            # The provider keeps its latest sessions for introspection: keep them light,
            # and never the masquerade session (it is freed as soon as it ends).
            self._owner = self._translator = None
            if not self._released:
                self._released = True
                await self.provider.release_client(self.client)

    async def _result(self) -> ProviderOutcome:
        await self._wait_terminal(self.provider.result_wait)
        status = self.status
        outcome = ProviderOutcome()
        if status is not None:
            outcome = ProviderOutcome(
                outcome=_OUTCOMES.get(status.status),
                duration_s=status.duration,
                failure=status.failure,
                failure_code=status.failure_code,
                extra={"runway_status": status.status, "ended_with": self.ended_with},
            )
        if self.long_call_outcome is not None:
            outcome.extra["long_call"] = self.long_call_outcome
        conversation = await self._conversation()
        if conversation is None:
            return outcome
        earlier = [await self._conversation(sid) for sid in self.segments[:-1]]
        turns = [t for c in (*earlier, conversation) if c is not None for t in c.transcript]
        transcript = [
            TranscriptTurn(
                role=cast(Role, turn.role if turn.role in ("user", "assistant") else "system"),
                text=turn.content,
                timestamp=turn.timestamp,
                tool_calls=turn.tool_calls,
                tool_results=turn.tool_results,
            )
            for turn in turns
        ]
        extra: dict[str, Any] = {**outcome.extra, "conversation_status": conversation.status}
        duration = outcome.duration_s if outcome.duration_s is not None else conversation.duration
        if earlier:
            extra["segments"] = list(self.segments)
            extra["recording_urls"] = [
                c.recording_url for c in (*earlier, conversation) if c is not None
            ]
            duration = (duration or 0) + sum(c.duration or 0 for c in earlier if c is not None)
        return outcome.model_copy(
            update={
                "transcript": transcript,
                "recording_url": conversation.recording_url,
                "duration_s": duration,
                "failure": outcome.failure or conversation.failure,
                "failure_code": outcome.failure_code or conversation.failure_code,
                "extra": extra,
            }
        )

    async def _conversation(self, session_id: str | None = None) -> AvatarConversation | None:
        session_id = session_id or self.id
        conversation: AvatarConversation | None = None
        delay = 0.05
        with anyio.move_on_after(self.provider.result_wait):
            while True:
                try:
                    conversation = await self.client.retrieve_avatar_conversation(session_id)
                except RunwayNotFound:
                    return None  # never started (cancelled while provisioning)
                except RunwayError as exc:
                    logger.warning("could not read conversation %s: %s", session_id, exc.message)
                    return None
                if conversation.status != "in_progress":
                    return conversation
                await anyio.sleep(delay)
                delay = min(delay * 2, 1.0)
        return conversation
