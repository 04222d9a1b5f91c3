"""Renewal: keep the call going when a connection drops or the session nears its limit.

A GA Realtime session ends after 60 minutes, and a new connection starts an empty server
session. :class:`Renewal` runs the receive loop (:meth:`Renewal.run`) and decides what a
closed connection means: after a recoverable close code or an expiry it reconnects (with
backoff, within :class:`~masquerade_openai.RenewalPolicy`), configures the new session
like the first one and replays the conversation (sessions attached to a call by
``call_id`` re-attach to the same call and replay nothing); a clean close ends the call;
anything else fails it with a clear error. The connection is renewed proactively at the
first idle moment after ``renew_after`` seconds: the receive loop reads under that
deadline, and a renewal task exists only once it has passed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from masquerade import ProviderError, SessionClosed
from masquerade.events import ErrorEvent, ProviderEvent

from ._conversation import RealtimeConversation
from ._fast import builder
from ._link import RealtimeLink
from ._options import RealtimeOptions
from ._shared import Flag, event_id, hint_for, noop_emit
from ._translate import EventTranslator
from ._transport import RECOVERABLE_CLOSE_CODES, ConnectionClosed, WebSocket, close_code_of
from ._turns import TurnTaking

__all__ = ["Renewal"]

_provider_event = builder(ProviderEvent)
_NEVER = object()


class Renewal:
    """The receive loop of a session and its reconnections.

    Attributes:
        reconnects: how many times the connection was renewed.
        session_payload: the session configuration every new connection gets (the first
            ``session.update`` plus every later change).
        reconnecting: a reconnection is under way.
    """

    # Slots: thousands of idle sessions each hold one of these.
    __slots__ = (
        "_renewing", "call_id", "conversation", "emit", "link", "options", "provider",
        "reconnecting", "reconnects", "session_payload", "translator", "turns",
    )

    def __init__(
        self,
        *,
        provider: str,
        options: RealtimeOptions,
        call_id: str | None,
        link: RealtimeLink,
        turns: TurnTaking,
        translator: EventTranslator,
        conversation: RealtimeConversation,
    ) -> None:
        self.provider = provider
        self.options = options
        self.call_id = call_id
        self.link = link
        self.turns = turns
        self.translator = translator
        self.conversation = conversation
        self.emit: Callable[[Any], Any] = noop_emit
        self.reconnects = 0
        self.reconnecting = False
        self.session_payload: dict[str, Any] = {}
        # The socket a renewal task was started for (see run); _NEVER once one failed.
        self._renewing: object = None

    async def run(self, start: Awaitable[None] | None = None) -> None:
        """Read events until the conversation ends, renewing the connection as needed;
        ``start`` (the start of the call) is awaited first. The conversation is closed
        when this returns.

        Proactive renewal costs an idle session no task: the current socket is read under
        a deadline (``renew_after`` after it opened), and only when the deadline passes
        does a renewal task start (:meth:`timer`), which waits for an idle moment and
        renews while this loop goes on reading. A session whose ``max_duration`` ends it
        first (the default: 5 minutes) reads without that deadline.
        """
        try:
            if start is not None:
                await start
                del start  # its frame is not kept for the call's life
            link = self.link
            read = self.translator.read
            policy = self.options.renewal
            renew_after = policy.renew_after if policy.enabled else None
            # The session's scope ends it at most max_duration after it started running,
            # which was before now: a renewal due after now + max_duration never happens.
            session = self.translator.session
            limit = session.request.max_duration if session is not None else None
            ends_by = math.inf if limit is None else time.monotonic() + limit
            while True:
                ws = link.ws
                assert ws is not None
                try:
                    if (
                        renew_after is None
                        or link.opened_at + renew_after >= ends_by
                        or self._renewing is ws
                        or self._renewing is _NEVER
                    ):
                        await read(ws)
                        continue
                    left = link.opened_at + renew_after - time.monotonic()
                    with anyio.move_on_after(left) as scope:
                        # Hands back before sending what handlers queued: the deadline only
                        # ever interrupts a wait for the next frame, never a send.
                        await read(ws, hand_back=True)
                    if scope.cancelled_caught:
                        self._start_timer(ws)
                    await link.flush()
                except ConnectionClosed as exc:
                    if link.closing:
                        return
                    if link.ws is not ws:
                        continue  # a renewal replaced this connection
                    if self.reconnecting:  # a renewal is under way: it brings the new socket
                        assert link.link_up is not None
                        await link.link_up.wait()
                        continue
                    code, reason = close_code_of(exc)
                    link.close_info = (code, reason)
                    if not await self.recover(code, reason):
                        return
        finally:
            self.conversation.close()

    def _start_timer(self, ws: WebSocket) -> None:
        """``renew_after`` has passed on ``ws``: start the task that renews it."""
        self._renewing = ws  # read on without a deadline until the socket changes
        session = self.translator.session
        if session is None or self.link.closing:
            return
        try:
            session.spawn(self.timer, ws, name="openai session renewal")
        except SessionClosed:
            pass  # the session is ending: nothing to renew

    async def recover(self, code: int, reason: str) -> bool:
        """Decide what a closed connection means; ``True`` when the call goes on."""
        policy = self.options.renewal
        expired = self.link.expired
        if policy.enabled and (code in RECOVERABLE_CLOSE_CODES or expired):
            await self.reconnect(f"session expired (code {code})" if expired
                                 else f"connection closed with code {code}")
            return True
        if code == 1000 and not expired:
            if self.turns.mid_turn():
                self.emit(
                    ErrorEvent(
                        code="closed_mid_turn",
                        message=f"the Realtime server closed the connection cleanly (code "
                        f"{code}) while a response or tool call was in progress",
                        fatal=False,
                    )
                )
            self.emit(_provider_event({"type": "provider", "name": "connection.closed",
                                       "payload": {"code": code, "reason": reason}}))
            return False
        raise ProviderError(
            f"the Realtime server closed the connection with code {code}"
            + (f" ({reason})" if reason else ""),
            provider=self.provider,
            code=reason or f"close_{code}",
            retryable=code in RECOVERABLE_CLOSE_CODES,
            hint="enable renewal (options renewal.enabled) to reconnect automatically"
            if code in RECOVERABLE_CLOSE_CODES
            else hint_for(reason.split(".")[-1] if reason else None, None),
        )

    async def reconnect(self, reason: str) -> None:
        """Open a new connection, configure it, replay the conversation, go on."""
        policy = self.options.renewal
        link = self.link
        if self.reconnects >= policy.max_reconnects:
            raise ProviderError(
                f"{reason}, and the session already reconnected {self.reconnects} time(s) "
                f"(renewal.max_reconnects={policy.max_reconnects})",
                provider=self.provider,
                code="max_reconnects",
                hint="raise renewal.max_reconnects, or check the network",
            )
        self.reconnects += 1
        self.reconnecting = True
        link.link_up = up = Flag()
        self.emit(_provider_event({"type": "provider", "name": "session.reconnecting",
                                   "payload": {"reason": reason, "reconnect": self.reconnects}}))
        self.turns.connection_lost(resume=policy.resume_response)
        try:
            ws, early = await self._open_with_backoff(reason)
            old = link.replace(ws)
            replayed = 0
            if self.call_id is None:
                replayed = await self._replay(ws)
            for data in early:
                self.translator.dispatch(data)
            link.forget_handshake()
        finally:
            self.reconnecting = False
        up.set()
        self.emit(_provider_event({"type": "provider", "name": "session.renewed",
                                   "payload": {"reason": reason, "replayed_items": replayed,
                                               "server_session_id": link.server_session_ids[-1]
                                               if link.server_session_ids else "",
                                               "reconnect": self.reconnects}}))
        if old is not None and old is not ws:
            with anyio.move_on_after(self.options.close_timeout):
                await link.close_quietly(old, reason="session renewed")
        self.turns.pump()
        await link.flush()

    async def _open_with_backoff(self, reason: str) -> tuple[WebSocket, list[Any]]:
        policy = self.options.renewal
        delay = policy.backoff_initial
        for attempt in range(1, policy.attempts + 1):
            try:
                return await self.link.open(self.session_payload)
            except ProviderError as exc:
                if not exc.retryable or attempt == policy.attempts:
                    raise ProviderError(
                        f"{reason}; reconnecting failed after {attempt} attempt(s): "
                        f"{exc.message}",
                        provider=self.provider,
                        status_code=exc.status_code,
                        code=exc.code,
                        hint=exc.hint,
                    ) from None
                await anyio.sleep(delay)
                delay = min(delay * 2, policy.backoff_max)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    async def _replay(self, ws: WebSocket) -> int:
        """Recreate the conversation in the new server session, oldest item first."""
        count = 0
        replaying = self.translator.replaying
        if not isinstance(replaying, set):
            replaying = self.translator.replaying = set()
        for item in self.conversation.items():
            if not item.completed and item.type != "function_call_output":
                continue
            payload = item.replay_payload()
            if payload is None:
                continue
            replaying.add(item.id)
            await ws.send(json.dumps({"type": "conversation.item.create",
                                      "event_id": event_id(), "item": payload}))
            count += 1
        return count

    async def timer(self, ws: WebSocket) -> None:
        """Renew ``ws``, whose ``renew_after`` has passed, at its first idle moment (or
        after ``idle_grace`` seconds); a failed renewal ends proactive renewal."""
        policy = self.options.renewal
        link = self.link
        turns = self.turns
        with anyio.move_on_after(policy.idle_grace):
            # Idleness depends on many state changes (responses, tools, playback
            # time): polling it every 50 ms is simpler than signalling each one.
            while turns.mid_turn() or self.reconnecting or turns.playing():  # noqa: ASYNC110
                await anyio.sleep(0.05)
        if link.closing or self.reconnecting or link.ws is not ws:
            return  # a reconnection happened meanwhile: its socket is fresh
        try:
            await self.reconnect("the session is approaching its time limit")
        except ProviderError as exc:
            self.emit(ErrorEvent(code=exc.code or "renewal_failed", message=exc.message,
                                 fatal=True))
            self._renewing = _NEVER  # no further proactive renewal
