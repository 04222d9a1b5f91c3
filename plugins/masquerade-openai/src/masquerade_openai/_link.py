"""The wire of one Realtime session: connect, handshake, send, and the send queue.

:class:`RealtimeLink` owns the websocket the session currently talks through. It opens a
socket and completes the handshake (``session.created``, the configuring
``session.update``, its ``session.updated``), sends client events once the link is up and
the tools are declared, and drains the *outbox*: events that synchronous handlers queue
while a frame is being handled (a ``response.cancel`` on barge-in, a sequenced
``response.create``), sent in order right after that frame.

It also remembers what the server said about the connection: the server session ids, the
session configuration it last confirmed, and how the last connection closed. Renewal
(:mod:`._renewal`) swaps in a new socket through :meth:`RealtimeLink.open` and
:meth:`RealtimeLink.replace`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio

from masquerade import ProviderError, SessionClosed

from ._options import RealtimeOptions
from ._shared import Flag, event_id, hint_for, per_object
from ._transport import (
    RECOVERABLE_CLOSE_CODES,
    ConnectionClosed,
    WebSocket,
    close_code_of,
    open_websocket,
)

__all__ = ["RealtimeLink"]

logger = logging.getLogger("masquerade_openai")

#: Fields of a session configuration that differ from session to session.
_OWN_FIELDS = ("id", "expires_at")
_ABSENT = object()
#: Session configurations without their _OWN_FIELDS, newest last: one private copy of
#: each, shared by every session the server configured alike (never handed out).
_CONFIGS: list[dict[str, Any]] = []
_EMPTY_CONFIG: dict[str, Any] = {}

#: id(payload) -> (payload, its JSON text): session payloads are shared between sessions
#: and replaced, never changed (see ``_session._shared_payload``), so each is serialized
#: once, not once per connection.
_PAYLOAD_TEXTS: dict[int, tuple[dict[str, Any], str]] = {}


def _session_update(update_id: str, payload: dict[str, Any]) -> str:
    """The configuring ``session.update`` of the handshake, as JSON text."""
    text = per_object(
        _PAYLOAD_TEXTS, id(payload), payload, lambda: json.dumps(payload), limit=64
    )
    # (event ids are made of [a-z0-9_]: nothing to escape)
    return f'{{"type": "session.update", "event_id": "{update_id}", "session": {text}}}'



class RealtimeLink:
    """The current websocket of a session and everything sent through it.

    Attributes:
        ws: the open socket (``None`` before :meth:`open`).
        outbox: client events queued by handlers, sent by :meth:`flush`.
        session_id: the first server session's id (stable across renewals).
        server_session_ids: every server session id, oldest first.
        session_config: the session as the server last confirmed it.
        close_info: ``(code, reason)`` of the last connection that closed.
        opened_at: ``time.monotonic()`` when the current socket opened.
        expired: the server said the session hit its time limit.
        closing: the session is ending; nothing more is sent.
    """

    # Slots: thousands of idle sessions each hold one of these.
    __slots__ = (
        "_flushing", "_session_config", "_session_own", "_stored", "close_info", "closing",
        "configured", "expired", "headers", "link_up", "opened_at", "options", "outbox",
        "provider", "server_session_ids", "session_id", "url", "ws",
    )

    def __init__(
        self, *, provider: str, options: RealtimeOptions, url: str, headers: Mapping[str, str]
    ) -> None:
        self.provider = provider
        self.options = options
        self.url = url
        self.headers = headers  # read only (the provider shares it between sessions)
        self.ws: WebSocket | None = None
        self.outbox: list[dict[str, Any]] = []
        self.session_id = ""
        self.server_session_ids: list[str] = []
        # Shared (see the setter): a copy per session would cost kilobytes.
        self._session_config = _EMPTY_CONFIG
        self._session_own: tuple[Any, ...] | None = None  # its _OWN_FIELDS
        # The handshake's confirmed configuration, stored already: the receive loop
        # dispatches the same event later (see forget_handshake).
        self._stored: dict[str, Any] | None = None
        self.close_info: tuple[int, str] | None = None
        self.opened_at = 0.0
        self.expired = False
        self.closing = False
        # Set while a socket is usable (cleared during a renewal), and once the tools are
        # declared (everything but the declaration waits for it).
        self.link_up: Flag | None = None
        self.configured: Flag | None = None
        self._flushing = False

    @property
    def session_config(self) -> dict[str, Any]:
        """The session as the server last confirmed it (a fresh copy per read)."""
        shared = self._session_config
        if not shared:
            return {}
        config: dict[str, Any] = json.loads(json.dumps(shared))  # a deep copy
        own = self._session_own
        if own is None:
            return config
        mine = {k: v for k, v in zip(_OWN_FIELDS, own, strict=True) if v is not _ABSENT}
        return {**mine, **config}

    @session_config.setter
    def session_config(self, value: dict[str, Any]) -> None:
        if value is self._stored:
            self._stored = None
            return  # the handshake stored this very configuration
        # What differs between sessions (the id, the expiry) is kept apart; the rest is
        # one dict shared by every session the server configured alike. Found by
        # equality (compared in C, newest first: sessions of one process are usually
        # configured alike), which costs a fraction of serializing it.
        if any(k in value for k in _OWN_FIELDS):
            self._session_own = tuple(value.get(k, _ABSENT) for k in _OWN_FIELDS)
            value = {k: v for k, v in value.items() if k not in _OWN_FIELDS}
        else:
            self._session_own = None
        for shared in reversed(_CONFIGS):
            if shared == value:
                break
        else:
            # A private deep copy: ``value`` also travels in the provider event that
            # observers see, and what they do to it must not reach other sessions.
            shared = json.loads(json.dumps(value))
            if len(_CONFIGS) >= 16:  # bounded: configurations that all differ
                del _CONFIGS[0]
            _CONFIGS.append(shared)
        self._session_config = shared

    @property
    def on_call(self) -> bool:
        """The socket is a call's sideband (``?call_id=``, SIP or WebRTC)."""
        return "call_id" in parse_qs(urlsplit(self.url).query)

    # ------------------------------------------------------------ opening
    async def start(self, payload: dict[str, Any]) -> list[Any]:
        """Open the first socket; returns the events read during the handshake."""
        self.link_up = Flag()
        self.configured = Flag()
        ws, early = await self.open(payload)
        self.replace(ws)
        self.link_up.set()
        return early

    def replace(self, ws: WebSocket) -> WebSocket | None:
        """Make ``ws`` the current socket; returns the one it replaces."""
        old, self.ws = self.ws, ws
        self.opened_at = time.monotonic()
        self.expired = False
        return old

    async def open(self, payload: dict[str, Any]) -> tuple[WebSocket, list[Any]]:
        """Open a socket configured with ``payload``; returns it and the handshake events."""
        opts = self.options
        ws = await open_websocket(
            self.url,
            headers=self.headers,
            open_timeout=opts.open_timeout,
            ping_interval=opts.ping_interval,
            ping_timeout=opts.ping_timeout,
            max_size=opts.max_size,
            compression=opts.compression,
            provider=self.provider,
        )
        try:
            with anyio.fail_after(opts.handshake_timeout):
                early = await self._handshake(ws, payload)
        except TimeoutError:
            await self.close_quietly(ws)
            raise ProviderError(
                f"the Realtime server did not confirm the session within "
                f"{opts.handshake_timeout:g}s (waiting for session.created / session.updated)",
                provider=self.provider,
                retryable=True,
            ) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.close_quietly(ws)
            raise
        return ws, early

    async def _handshake(self, ws: WebSocket, payload: dict[str, Any]) -> list[Any]:
        """Wait for ``session.created``, send the configuring update, wait for its ack.

        Every event read here is kept and dispatched later by the receive loop, so
        observers see the handshake too.
        """
        early: list[Any] = []
        update_id: str | None = None
        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosed as exc:
                code, reason = close_code_of(exc)
                if code == 1000 and self.on_call:
                    # The call ended (the caller hung up) while its sideband was being
                    # attached: no failure. The closed socket is handed on, and the
                    # receive loop ends the session like a hang-up during the call.
                    logger.info("the call ended during the sideband's handshake (%s)",
                                reason or f"code {code}")
                    self.close_info = (code, reason)
                    if not self.session_id:
                        self.session_id = f"rt_{uuid.uuid4().hex[:16]}"
                    return early
                raise self._handshake_close_error(code, reason, early) from None
            try:
                data = json.loads(raw)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                early.append(raw)  # reported as malformed once the session is connected
                continue
            early.append(data)
            kind = data.get("type")
            if kind == "session.created":
                self.note_session(data.get("session"))
                if update_id is None:
                    update_id = event_id()
                    await ws.send(_session_update(update_id, payload))
            elif kind == "session.updated" and update_id is not None:
                session = data.get("session")
                if isinstance(session, dict):
                    self.session_config = session
                    self._stored = session
                return early
            elif kind == "error":
                found = data.get("error")
                error: dict[str, Any] = found if isinstance(found, dict) else {}
                what = ("rejected the session configuration" if update_id is not None
                        else "refused the session")
                raise ProviderError(
                    f"the Realtime server {what}: {error.get('message') or 'no message'}",
                    provider=self.provider,
                    code=error.get("code") or error.get("type"),
                    hint=hint_for(error.get("code"), error.get("param")),
                )

    def _handshake_close_error(self, code: int, reason: str, early: list[Any]) -> ProviderError:
        message = f"the Realtime server closed the connection during the handshake (code {code}"
        message += f", {reason})" if reason else ")"
        for data in early:
            if (
                isinstance(data, dict)
                and data.get("type") == "error"
                and isinstance(data.get("error"), dict)
            ):
                message += f": {data['error'].get('message')}"
        return ProviderError(
            message,
            provider=self.provider,
            code=reason or f"close_{code}",
            retryable=code in RECOVERABLE_CLOSE_CODES,
            hint=hint_for(reason.split(".")[-1] if reason else None, None),
        )

    def note_session(self, session: Any) -> None:
        """Remember the id of a server session that announced itself."""
        if not isinstance(session, dict):
            return
        sid = session.get("id")
        if isinstance(sid, str) and sid and (
            not self.server_session_ids or self.server_session_ids[-1] != sid
        ):
            self.server_session_ids.append(sid)
            if not self.session_id:
                self.session_id = sid
        if not self.session_id:
            self.session_id = f"rt_{uuid.uuid4().hex[:16]}"

    def forget_handshake(self) -> None:
        """The handshake's events were dispatched (or dropped): hold none of them."""
        self._stored = None

    # ------------------------------------------------------------ sending
    async def send(self, event: dict[str, Any], *, early: bool = False) -> None:
        """Send one client event (waits while a renewal brings up a new socket)."""
        await self.send_text(json.dumps(event), early=early)

    async def send_text(self, text: str, *, early: bool = False) -> None:
        link = self.link_up
        if link is None:
            raise SessionClosed("the OpenAI Realtime session was never opened")
        if self.closing:
            raise SessionClosed("the OpenAI Realtime session has ended")
        if not link.is_set():
            await link.wait()
        configured = self.configured
        if not early and configured is not None and not configured.is_set():
            await configured.wait()  # the tools are declared before anything else is sent
        ws = self.ws
        assert ws is not None
        await ws.send(text)

    async def flush(self) -> None:
        """Send what handlers queued, in order; one flusher at a time drains it all."""
        if self._flushing or not self.outbox:
            return
        self._flushing = True
        try:
            outbox = self.outbox
            while outbox:
                event = outbox.pop(0)
                try:
                    await self.send(event)
                except ConnectionClosed:
                    return  # the receive loop sees the close and recovers
        finally:
            self._flushing = False

    async def close_quietly(self, ws: WebSocket, reason: str = "") -> None:
        """Close ``ws``; a socket that is already dead is no error. Bounded by
        ``close_timeout``: past it the socket is abandoned (the handshake is best effort)."""
        with anyio.move_on_after(self.options.close_timeout):
            try:
                await ws.close(1000, reason)
            except Exception as exc:  # closing a dead socket must not break the cancel path
                logger.debug("closing the websocket failed: %s", exc)
