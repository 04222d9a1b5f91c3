"""One OpenAI Realtime session: the websocket, the event mapping, tools, barge-in, renewal.

:class:`OpenAIRealtimeSession` is both the provider session masquerade drives
(``connect`` / ``end`` / ``result``) and the OpenAI-specific handle an application uses
while the call runs. Reach it from a masquerade session with
:func:`masquerade_openai.realtime`::

    async with host.session(SessionRequest(provider="openai", tools=[lookup_order])) as s:
        rt = masquerade_openai.realtime(s)
        await rt.send_text("Where is my order A1001?")
        async for event in s.events():
            ...

The receive loop parses each frame with ``json.loads`` and dispatches it through a dict of
handlers that build normalized events without validation and hand them to the session's
synchronous ``emit``: no await per event beyond the socket receive. Whatever a handler
needs to send (a ``response.cancel`` on barge-in, a sequenced ``response.create``) goes
to an outbox that the loop flushes after the event.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from masquerade import ConfigurationError, ProviderError, SessionClosed, redact
from masquerade.events import (
    AudioDelta,
    ErrorEvent,
    JoinCredentials,
    ProviderEvent,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    TranscriptDelta,
    TranscriptDone,
)
from masquerade.provider import ProviderOutcome, ProvisioningStatus

from ._conversation import ConversationItem, RealtimeConversation
from ._fast import builder
from ._options import RealtimeOptions, deep_merge
from ._transport import (
    RECOVERABLE_CLOSE_CODES,
    ConnectionClosed,
    WebSocket,
    close_code_of,
    open_websocket,
)

if TYPE_CHECKING:
    from masquerade import Session, SessionRequest

    from ._calls import RealtimeCalls

__all__ = ["OpenAIRealtimeSession", "realtime", "wait_realtime", "MAX_APPEND_BYTES"]

logger = logging.getLogger("masquerade_openai")

#: Raw audio bytes per ``input_audio_buffer.append``: base64 grows data by 4/3, and the
#: server takes at most 15 MiB per event.
MAX_APPEND_BYTES = 11 * 2**20

# Error codes after which the session cannot go on.
_FATAL_CODES = frozenset(
    {
        "beta_api_shape_disabled",
        "invalid_api_key",
        "insufficient_quota",
        "model_not_found",
        "session_terminated",
    }
)

_audio_delta = builder(AudioDelta)
_transcript_delta = builder(TranscriptDelta)
_transcript_done = builder(TranscriptDone)
_provider_event = builder(ProviderEvent)
_response_started = builder(ResponseStarted)
_response_done = builder(ResponseDone)

# Sessions by masquerade session id and by provider session id, for realtime().
_LIVE: weakref.WeakValueDictionary[str, OpenAIRealtimeSession] = weakref.WeakValueDictionary()


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

    Raises :class:`~masquerade.SessionClosed` when the session ends before it is ready
    (with the failure), and :class:`TimeoutError` after ``timeout`` seconds.
    """
    with anyio.fail_after(timeout):
        async with session.events() as stream:
            async for event in stream:
                if event.type == "ready":
                    return realtime(session)
                if event.type == "ended":
                    break
    failure = session.result.failure if session.result is not None else None
    raise SessionClosed(
        f"session {session.id} ended before it was ready"
        + (f": {failure}" if failure else ""),
        hint="see session.result for the failure",
    )


def _event_id() -> str:
    return f"evt_msq_{uuid.uuid4().hex[:20]}"


def _item_id() -> str:
    return f"item_msq_{uuid.uuid4().hex[:18]}"


_AUTO: dict[str, Any] = {}  # marker in the response queue: the follow-up after tool outputs
_YIELD: dict[str, Any] = {}  # marker in the outbox: yield once so a spawned tool starts


class OpenAIRealtimeSession:
    """A GA Realtime session over one websocket (renewed as needed).

    Created by :meth:`OpenAIRealtimeProvider.create`, which opens the socket and completes
    the handshake: ``session.created`` has arrived and the configuring ``session.update``
    was acknowledged with ``session.updated``. :meth:`connect` then runs the receive loop.

    Attributes:
        id: the provider session id (the first server session's id; stable across
            renewals). :attr:`server_session_id` is the current one.
        call_id: the SIP or WebRTC call the session is attached to, if any.
        conversation: the :class:`RealtimeConversation` store.
        options: the resolved :class:`RealtimeOptions`.
        session_config: the session as the server last confirmed it (``session.updated``).
        reconnects: how many times the connection was renewed.
    """

    requires_polling = False

    def __init__(
        self,
        *,
        provider: str,
        options: RealtimeOptions,
        request: SessionRequest | None,
        url: str,
        headers: Mapping[str, str],
        calls: RealtimeCalls | None = None,
    ) -> None:
        self.provider = provider
        self.options = options
        self.request = request
        self.id = ""
        self.call_id = options.call_id
        self.conversation = RealtimeConversation()
        self.session_config: dict[str, Any] = {}
        self.reconnects = 0
        self.server_session_ids: list[str] = []
        self._url = url
        self._headers = dict(headers)
        self._calls = calls
        self._ws: WebSocket | None = None
        self._session: Session | None = None
        self._session_payload: dict[str, Any] = {}
        self._early: list[Any] = []
        self._outbox: list[dict[str, Any]] = []
        self._flushing = False
        self._link_up: anyio.Event | None = None
        self._configured: anyio.Event | None = None
        self._closing = False
        self._close_info: tuple[int, str] | None = None
        self._socket_opened_at = 0.0
        self._reconnecting = False
        self._expired = False
        self._replaying: set[str] = set()
        self._announced: set[str] = set()
        # response sequencing
        self._active_response: str | None = None
        self._create_pending: str | None = None
        self._last_create: dict[str, Any] | None = None
        self._last_create_id: str | None = None
        self._create_queue: deque[dict[str, Any]] = deque()
        self._tools_running = 0
        self._tool_calls: set[str] = set()
        # barge-in
        self._bytes_per_ms = options.output_bytes_per_ms()
        self._server_interrupts = options.server_interrupts
        self._store_audio = options.store_audio
        self._audio_item: ConversationItem | None = None
        self._text_item: ConversationItem | None = None  # the item text deltas go to
        self._audio_started = 0.0
        self._played: dict[str, int] = {}
        # Responses whose output is dropped (barged in on or cancelled), and the subset
        # cancelled because the user spoke (their response.done says turn_detected).
        self._abandoned: set[str] = set()
        self._barged: set[str] = set()
        self._usage: dict[str, Any] = {}
        self._ended_reason: str | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = self._build_handlers()

    def __repr__(self) -> str:
        where = f"call_id={self.call_id!r}" if self.call_id else f"model={self.model!r}"
        return f"<OpenAIRealtimeSession {self.id or '(connecting)'} {where}>"

    # ================================================================ properties
    @property
    def model(self) -> str:
        return self.options.resolved_model

    @property
    def server_session_id(self) -> str:
        """The id of the current server session (changes when the session is renewed)."""
        return self.server_session_ids[-1] if self.server_session_ids else ""

    @property
    def usage(self) -> dict[str, Any]:
        """Token usage summed over every ``response.done`` so far."""
        return self._usage

    @property
    def response_active(self) -> bool:
        """Whether a response is in progress (or requested and not yet started)."""
        return self._active_response is not None or self._create_pending is not None

    @property
    def close_code(self) -> int | None:
        """The close code of the last connection that closed, if one did."""
        return self._close_info[0] if self._close_info else None

    # ================================================================ conversation
    def items(self) -> list[ConversationItem]:
        """All conversation items so far, in order."""
        return self.conversation.items()

    def get_item(self, item_id: str) -> ConversationItem | None:
        return self.conversation.get(item_id)

    async def next_item(self) -> ConversationItem:
        """Wait for the next item added to the conversation (see RealtimeConversation)."""
        return await self.conversation.next_item()

    async def next_completed_item(self) -> ConversationItem:
        """Wait for the next item that finished (see RealtimeConversation)."""
        return await self.conversation.next_completed_item()

    # ================================================================ handshake
    async def open(self) -> None:
        """Open the socket and complete the handshake (called by the provider's create)."""
        payload = self.options.session_payload(
            self.request.personality if self.request is not None else None
        )
        self._session_payload = payload
        self._link_up = anyio.Event()
        self._configured = anyio.Event()
        ws, early = await self._open_configured(payload)
        self._ws = ws
        self._early = early
        self._socket_opened_at = time.monotonic()
        self._link_up.set()
        _LIVE[self.id] = self

    async def _open_configured(
        self, payload: dict[str, Any]
    ) -> tuple[WebSocket, list[Any]]:
        opts = self.options
        ws = await open_websocket(
            self._url,
            headers=self._headers,
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
            await self._close_quietly(ws)
            raise ProviderError(
                f"the Realtime server did not confirm the session within "
                f"{opts.handshake_timeout:g}s (waiting for session.created / session.updated)",
                provider=self.provider,
                retryable=True,
            ) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._close_quietly(ws)
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
                self._note_session(data.get("session"))
                if update_id is None:
                    update_id = _event_id()
                    await ws.send(
                        json.dumps(
                            {"type": "session.update", "event_id": update_id, "session": payload}
                        )
                    )
            elif kind == "session.updated" and update_id is not None:
                session = data.get("session")
                if isinstance(session, dict):
                    self.session_config = session
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
                    hint=_hint_for(error.get("code"), error.get("param")),
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
            hint=_hint_for(reason.split(".")[-1] if reason else None, None),
        )

    def _note_session(self, session: Any) -> None:
        if not isinstance(session, dict):
            return
        sid = session.get("id")
        if isinstance(sid, str) and sid and (
            not self.server_session_ids or self.server_session_ids[-1] != sid
        ):
            self.server_session_ids.append(sid)
            if not self.id:
                self.id = sid
        if not self.id:
            self.id = f"rt_{uuid.uuid4().hex[:16]}"

    # ================================================================ ProviderSession
    async def poll(self) -> ProvisioningStatus:
        return ProvisioningStatus(state="ready", provider_status="session.updated")

    async def join_credentials(self) -> JoinCredentials:
        public = {"sessionId": self.id, "model": self.model}
        if self.call_id:
            public["callId"] = self.call_id
        return JoinCredentials(
            provider=self.provider, kind="sip" if self.call_id else "websocket", public=public
        )

    async def connect(self, session: Session) -> None:
        """Run the call: declare the tools, then read events until the conversation ends."""
        self._session = session
        # One call less per event on the hot path: handlers call the session's emit.
        self._emit = session.emit  # type: ignore[method-assign]
        _LIVE[session.id] = self
        try:
            tools = [session.host.tool_schema(t, "openai") for t in session.tools.values()]
            if tools:
                update = {"type": "realtime", "tools": tools}
                self._session_payload = deep_merge(self._session_payload, update)
                await self._send(
                    {"type": "session.update", "event_id": _event_id(), "session": update},
                    early=True,
                )
            assert self._configured is not None
            self._configured.set()
            early, self._early = self._early, []
            for data in early:
                self._dispatch(data)
            request = self.request
            if request is not None and request.start_script:
                self._create_queue.append(
                    {"instructions": f"Say exactly: {request.start_script}"}
                )
                self._pump()
            await self._flush()
            if self.options.renewal.enabled and self.options.renewal.renew_after:
                session.spawn(self._renewal_timer, name="openai session renewal")
            await self._run()
        finally:
            self.conversation.close()

    async def end(self, reason: str) -> None:
        """Close the websocket (and hang up the call for ``call_id`` sessions)."""
        self._closing = True
        self._ended_reason = reason
        if self.call_id and self.options.hangup_on_end and self._calls is not None:
            try:  # a call the caller already ended answers 404: hangup returns False
                await self._calls.hangup(self.call_id)
            except ProviderError as exc:
                logger.warning("hanging up call %s failed: %s", self.call_id, exc)
        ws = self._ws
        if ws is not None:
            await self._close_quietly(ws)
        self.conversation.close()

    async def result(self) -> ProviderOutcome:
        extra: dict[str, Any] = {
            "server_session_ids": list(self.server_session_ids),
            "reconnects": self.reconnects,
            "items": len(self.conversation),
        }
        if self._close_info is not None:
            extra["close_code"], extra["close_reason"] = self._close_info
        if self.call_id:
            extra["call_id"] = self.call_id
        return ProviderOutcome(usage=dict(self._usage), extra=extra)

    # ================================================================ public input
    async def send_text(self, text: str, *, respond: bool = True, role: str = "user") -> str:
        """Add a text message to the conversation; with ``respond``, ask for a response.

        Returns the new item's id. The turn appears in the transcript right away.
        """
        if role not in ("user", "system"):
            raise ConfigurationError(
                f"send_text role must be 'user' or 'system', not {role!r}",
                hint="assistant messages come from the model",
            )
        item_id = _item_id()
        payload = {
            "id": item_id,
            "type": "message",
            "role": role,
            "content": [{"type": "input_text", "text": text}],
        }
        self.conversation.upsert({**payload, "status": "completed"})
        await self._send({"type": "conversation.item.create", "event_id": _event_id(),
                          "item": payload})
        self._emit(_transcript_done({"type": "transcript.done", "role": role, "text": text,
                                     "turn": item_id}))
        if respond:
            await self.create_response()
        return item_id

    async def send_audio(self, pcm: bytes) -> None:
        """Append raw audio (in the session's input format) to the input buffer.

        Large buffers are split so each event stays under the server's 15 MiB limit.
        """
        import base64

        view = memoryview(pcm)
        for start in range(0, len(view), MAX_APPEND_BYTES):
            chunk = base64.b64encode(view[start : start + MAX_APPEND_BYTES]).decode("ascii")
            # base64 needs no JSON escaping: build the frame without json.dumps' scan.
            await self._send_text(
                '{"type":"input_audio_buffer.append","audio":"' + chunk + '"}'
            )

    async def commit(self) -> None:
        """Commit the input audio buffer as a user message (for manual turns)."""
        await self._send({"type": "input_audio_buffer.commit", "event_id": _event_id()})

    async def clear_audio(self) -> None:
        """Drop the audio appended since the last commit."""
        await self._send({"type": "input_audio_buffer.clear", "event_id": _event_id()})

    async def create_response(self, **response: Any) -> None:
        """Ask the model to respond (``response.create``), with optional GA response fields
        (``instructions``, ``output_modalities``, ``tools``, ``conversation``...).

        Requests are sequenced: one is sent only when no response is active, so the server
        never answers ``conversation_already_has_active_response``.
        """
        self._create_queue.append(dict(response))
        self._pump()
        await self._flush()

    async def cancel_response(self) -> bool:
        """Cancel the response in progress; ``False`` when there was none."""
        if self._active_response is None:
            return False
        event: dict[str, Any] = {"type": "response.cancel", "event_id": _event_id()}
        if not self._active_response.startswith("("):
            event["response_id"] = self._active_response
        self._abandoned.add(self._active_response)
        await self._send(event)
        return True

    async def interrupt(self) -> None:
        """Barge in from the application side: cancel the response and truncate the audio
        at the current playback position."""
        self._barge_in(force_cancel=True)
        await self._flush()

    async def truncate(self, item_id: str | None = None, audio_end_ms: int | None = None) -> int:
        """Truncate an assistant audio item at ``audio_end_ms`` (default: the playback
        position), clamped to the audio received. Returns the position used."""
        item = self.conversation.get(item_id) if item_id else self._audio_item
        if item is None or not item.audio_chars:
            raise ConfigurationError(
                "there is no assistant audio to truncate",
                hint="only assistant audio items that received audio can be truncated",
            )
        received = item.audio_ms(self._bytes_per_ms)
        end = self._playback_ms(item) if audio_end_ms is None else audio_end_ms
        end = max(0, min(end, received))
        await self._send(
            {
                "type": "conversation.item.truncate",
                "event_id": _event_id(),
                "item_id": item.id,
                "content_index": 0,
                "audio_end_ms": end,
            }
        )
        return end

    def report_playback(self, audio_ms: int, item_id: str | None = None) -> None:
        """Tell the session how much of an assistant item's audio has actually been played
        (for telephony or a remote player). Barge-in then truncates there; without
        reports, playback is assumed to start with the first delta at real-time speed."""
        target = item_id or (self._audio_item.id if self._audio_item else None)
        if target is not None:
            self._played[target] = max(0, int(audio_ms))

    async def update(self, session: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Send a partial ``session.update`` (GA session fields); it is kept, so a renewed
        session is configured the same way."""
        change: dict[str, Any] = {"type": "realtime", **dict(session or {}), **fields}
        self._session_payload = deep_merge(self._session_payload, change)
        await self._send({"type": "session.update", "event_id": _event_id(), "session": change})

    async def send_event(self, event: Mapping[str, Any]) -> None:
        """Send any client event as is (an escape hatch for new protocol features)."""
        await self._send(dict(event))

    async def hangup(self) -> bool:
        """Hang up the SIP or WebRTC call this session is attached to."""
        if not self.call_id or self._calls is None:
            raise ConfigurationError(
                "this session is not attached to a call", hint="hangup needs a call_id session"
            )
        return await self._calls.hangup(self.call_id)

    # ================================================================ sending
    async def _send(self, event: dict[str, Any], *, early: bool = False) -> None:
        await self._send_text(json.dumps(event), early=early)

    async def _send_text(self, text: str, *, early: bool = False) -> None:
        link = self._link_up
        if link is None:
            raise SessionClosed("the OpenAI Realtime session was never opened")
        if self._closing:
            raise SessionClosed("the OpenAI Realtime session has ended")
        if not link.is_set():
            await link.wait()
        configured = self._configured
        if not early and configured is not None and not configured.is_set():
            await configured.wait()  # the tools are declared before anything else is sent
        ws = self._ws
        assert ws is not None
        await ws.send(text)

    async def _flush(self) -> None:
        """Send what handlers queued, in order; one flusher at a time drains it all."""
        if self._flushing or not self._outbox:
            return
        self._flushing = True
        try:
            outbox = self._outbox
            while outbox:
                event = outbox.pop(0)
                if event is _YIELD:
                    # A tool call was just spawned: let it start now, so its output goes
                    # out while the rest of the response is still arriving.
                    await anyio.lowlevel.checkpoint()
                    continue
                try:
                    await self._send(event)
                except ConnectionClosed:
                    return  # the receive loop sees the close and recovers
        finally:
            self._flushing = False

    # ================================================================ receiving
    async def _run(self) -> None:
        while True:
            ws = self._ws
            assert ws is not None
            try:
                await self._read(ws)
            except ConnectionClosed as exc:
                if self._closing:
                    return
                if self._ws is not ws:
                    continue  # a renewal replaced this connection
                if self._reconnecting:  # a renewal is under way: it brings the new socket
                    assert self._link_up is not None
                    await self._link_up.wait()
                    continue
                code, reason = close_code_of(exc)
                self._close_info = (code, reason)
                if not await self._recover(code, reason):
                    return

    async def _read(self, ws: WebSocket) -> None:
        recv = ws.recv
        loads = json.loads
        handlers = self._handlers
        outbox = self._outbox
        unmapped = self._unmapped
        while True:
            raw = await recv()
            data = None
            try:
                data = loads(raw)
                if type(data) is dict:
                    handler = handlers.get(data.get("type"))  # type: ignore[arg-type]
                    if handler is None:
                        unmapped(data)
                    else:
                        handler(data)
                else:
                    self._malformed(raw, "the frame is not a JSON object")
            except Exception as exc:
                self._handler_failed(raw, data, exc)
            if outbox:
                await self._flush()

    def _dispatch(self, data: Any) -> None:
        """Handle one event outside the receive loop (the handshake's events)."""
        if not isinstance(data, dict):
            self._malformed(data, "the frame is not a JSON object")
            return
        try:
            handler = self._handlers.get(data.get("type"))  # type: ignore[arg-type]
            if handler is None:
                self._unmapped(data)
            else:
                handler(data)
        except Exception as exc:
            self._handler_failed(data, data, exc)

    def _unmapped(self, data: dict[str, Any]) -> None:
        self._emit(_provider_event({"type": "provider", "name": str(data.get("type")),
                                    "payload": data}))

    def _handler_failed(self, raw: Any, data: Any, exc: Exception) -> None:
        if data is None:
            self._malformed(raw, "the frame is not valid JSON")
            return
        if not isinstance(exc, KeyError | TypeError | ValueError | AttributeError):
            logger.debug("handling a server event failed", exc_info=True)
        problem = f"missing field {exc}" if isinstance(exc, KeyError) else (
            f"{type(exc).__name__}: {exc}"
        )
        self._malformed(data, problem)

    def _emit(self, event: Any) -> Any:
        """Deliver an event (replaced by the session's own ``emit`` once connected)."""
        session = self._session
        if session is not None:
            return session.emit(event)
        return None

    def _malformed(self, raw: Any, problem: str) -> None:
        kind = raw.get("type") if isinstance(raw, dict) else None
        what = f"a {kind!r} event" if kind else "a server frame"
        if isinstance(raw, bytes | str):
            raw = raw[:2000]
        self._emit(
            ErrorEvent(
                code="malformed_event",
                message=redact(f"{what} could not be handled ({problem}); it was skipped"),
                fatal=False,
                raw=raw,
            )
        )

    # ================================================================ handlers
    def _build_handlers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        h: dict[str, Callable[[dict[str, Any]], None]] = {
            "session.created": self._on_session_created,
            "session.updated": self._on_session_updated,
            "error": self._on_error,
            "conversation.item.added": self._on_item_added,
            "conversation.item.created": self._on_item_added,  # beta
            "conversation.item.done": self._on_item_done,
            "conversation.item.retrieved": self._on_item_added,
            "conversation.item.truncated": self._on_item_truncated,
            "conversation.item.deleted": self._on_item_deleted,
            "conversation.item.input_audio_transcription.delta": self._on_input_transcript_delta,
            "conversation.item.input_audio_transcription.completed": self._on_input_transcript,
            "conversation.item.input_audio_transcription.failed": self._on_transcription_failed,
            "input_audio_buffer.speech_started": self._on_speech_started,
            "input_audio_buffer.speech_stopped": self._on_speech_stopped,
            "response.created": self._on_response_created,
            "response.done": self._on_response_done,
            "response.output_item.added": self._on_output_item_added,
            "response.output_item.done": self._on_output_item_done,
            "response.output_audio.delta": self._on_audio_delta,
            "response.audio.delta": self._on_audio_delta,  # beta
            "response.output_audio_transcript.delta": self._on_transcript_delta,
            "response.audio_transcript.delta": self._on_transcript_delta,  # beta
            "response.output_audio_transcript.done": self._on_transcript_done,
            "response.audio_transcript.done": self._on_transcript_done,  # beta
            "response.output_text.delta": self._on_text_delta,
            "response.text.delta": self._on_text_delta,  # beta
            "response.output_text.done": self._on_text_done,
            "response.text.done": self._on_text_done,  # beta
            "response.function_call_arguments.delta": self._on_arguments_delta,
            "response.function_call_arguments.done": self._on_arguments_done,
        }
        return h

    def _raw(self, data: dict[str, Any]) -> None:
        self._emit(_provider_event({"type": "provider", "name": data["type"], "payload": data}))

    # -- session
    def _on_session_created(self, data: dict[str, Any]) -> None:
        self._note_session(data["session"])
        self._raw(data)

    def _on_session_updated(self, data: dict[str, Any]) -> None:
        session = data["session"]
        if isinstance(session, dict):
            self.session_config = session
        self._raw(data)

    def _on_error(self, data: dict[str, Any]) -> None:
        error = data["error"]
        if not isinstance(error, dict):
            raise TypeError("'error' is not an object")
        code = error.get("code")
        message = str(error.get("message") or "the Realtime server reported an error")
        event_id = error.get("event_id")
        sent_id = self._last_create_id
        if code == "conversation_already_has_active_response":
            if sent_id is not None and event_id in (None, sent_id):
                # Our response.create raced a response we had not seen start (server VAD):
                # keep the request and send it after that response's response.done. (A
                # response.created may have arrived meanwhile and been taken for ours.)
                self._last_create_id = None
                self._create_queue.appendleft(
                    self._last_create if self._last_create is not None else {}
                )
                if self._create_pending == sent_id:
                    self._create_pending = None
                if self._active_response is None:
                    self._active_response = "(unseen)"
        elif sent_id is not None and event_id == sent_id:
            self._last_create_id = None  # that request was refused for good
            if self._create_pending == sent_id:
                self._create_pending = None
            self._pump()
        expired = code == "session_expired" or "maximum duration" in message
        if expired:
            self._expired = True
        fatal = code in _FATAL_CODES or (expired and not self.options.renewal.enabled)
        self._emit(
            ErrorEvent(
                code=str(code or error.get("type") or "error"),
                message=redact(message),
                fatal=fatal,
                raw=data,
            )
        )

    # -- conversation items
    def _on_item_added(self, data: dict[str, Any]) -> None:
        item = data["item"]
        stored = self.conversation.upsert(item)
        if stored is not None and stored.completed:
            self._announce_text_item(stored)
        self._raw(data)

    def _on_item_done(self, data: dict[str, Any]) -> None:
        stored = self.conversation.upsert(data["item"])
        if stored is not None:
            self.conversation.mark_completed(stored)
            self._announce_text_item(stored)
            self._replaying.discard(stored.id)
        self._raw(data)

    def _announce_text_item(self, item: ConversationItem) -> None:
        # User/system text typed by someone else (our own is announced when sent);
        # replayed items were announced in their first session.
        if (
            item.type == "message"
            and item.role in ("user", "system")
            and item.text
            and item.id not in self._replaying
            and item.id not in self._announced
            and not item.id.startswith("item_msq_")
        ):
            self._announced.add(item.id)  # once: conversation.item.done follows .added
            self._emit(_transcript_done({"type": "transcript.done", "role": item.role,
                                         "text": item.text, "turn": item.id}))

    def _on_item_truncated(self, data: dict[str, Any]) -> None:
        self.conversation.truncate(data["item_id"], int(data.get("audio_end_ms") or 0))
        self._raw(data)

    def _on_item_deleted(self, data: dict[str, Any]) -> None:
        self.conversation.delete(data["item_id"])
        self._raw(data)

    def _on_input_transcript_delta(self, data: dict[str, Any]) -> None:
        delta = data["delta"]
        item_id = data["item_id"]
        self.conversation.ensure(item_id, "message", "user").add_transcript(delta)
        self._emit(_transcript_delta({"type": "transcript.delta", "role": "user",
                                      "text": delta, "turn": item_id}))

    def _on_input_transcript(self, data: dict[str, Any]) -> None:
        transcript = data["transcript"]
        item_id = data["item_id"]
        item = self.conversation.ensure(item_id, "message", "user")
        item.transcript = transcript
        self._emit(_transcript_done({"type": "transcript.done", "role": "user",
                                     "text": transcript, "turn": item_id}))

    def _on_transcription_failed(self, data: dict[str, Any]) -> None:
        found = data.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        self._emit(
            ErrorEvent(
                code="transcription_failed",
                message=f"input transcription failed for item {data.get('item_id')}: "
                f"{error.get('message') or 'no reason given'}",
                fatal=False,
                raw=data,
            )
        )

    # -- speech and barge-in
    def _on_speech_started(self, data: dict[str, Any]) -> None:
        self._emit(SpeechStarted(audio_ms=data.get("audio_start_ms"), item_id=data.get("item_id")))
        self._barge_in(force_cancel=False)

    def _on_speech_stopped(self, data: dict[str, Any]) -> None:
        self._emit(SpeechStopped(audio_ms=data.get("audio_end_ms"), item_id=data.get("item_id")))

    def _playback_ms(self, item: ConversationItem) -> int:
        reported = self._played.get(item.id)
        if reported is not None:
            return reported
        return int((time.monotonic() - self._audio_started) * 1000)

    def _barge_in(self, *, force_cancel: bool) -> None:
        """The user spoke over the model: stop the response and cut the unheard audio."""
        response = self._active_response
        if response is not None:
            if force_cancel or not self._server_interrupts:
                event: dict[str, Any] = {"type": "response.cancel", "event_id": _event_id()}
                if not response.startswith("("):
                    event["response_id"] = response
                self._outbox.append(event)
            self._abandoned.add(response)
            self._barged.add(response)
        item = self._audio_item
        if item is None or item.truncated_ms is not None or not item.audio_chars:
            return
        received = item.audio_ms(self._bytes_per_ms)
        played = self._playback_ms(item)
        if played >= received and response is None:
            self._audio_item = None  # everything was heard: nothing to cut
            return
        end = max(0, min(played, received))
        item.truncated_ms = end
        self._audio_item = None
        self._outbox.append(
            {
                "type": "conversation.item.truncate",
                "event_id": _event_id(),
                "item_id": item.id,
                "content_index": 0,
                "audio_end_ms": end,
            }
        )

    # -- responses
    def _on_response_created(self, data: dict[str, Any]) -> None:
        response = data["response"]
        rid = response.get("id") if isinstance(response, dict) else None
        self._active_response = rid if isinstance(rid, str) else "(unnamed)"
        self._create_pending = None
        self._emit(_response_started({"type": "response.started", "response_id": rid}))

    def _on_response_done(self, data: dict[str, Any]) -> None:
        response = data["response"]
        if not isinstance(response, dict):
            raise TypeError("'response' is not an object")
        rid = response.get("id")
        status = str(response.get("status") or "completed")
        details = response.get("status_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        ids = {rid, self._active_response}
        if ids & self._barged and status == "cancelled":
            reason = "turn_detected"
        dropped = bool(ids & self._abandoned)
        self._barged -= ids
        self._abandoned -= ids
        usage = response.get("usage")
        if isinstance(usage, dict):
            _add_usage(self._usage, usage)
        else:
            usage = None
        if not dropped:
            for output in response.get("output") or ():
                # A function call that only shows up here (no output_item.done) still runs.
                if isinstance(output, dict) and output.get("type") == "function_call":
                    self._maybe_call_tool(output)
        self._active_response = None
        self._emit(_response_done({"type": "response.done", "response_id": rid, "status": status,
                                   "reason": reason, "usage": usage}))
        self._pump()

    def _on_output_item_added(self, data: dict[str, Any]) -> None:
        item = self.conversation.upsert(data["item"])
        if item is not None and item.response_id is None:
            item.response_id = data.get("response_id")
        self._raw(data)

    def _on_output_item_done(self, data: dict[str, Any]) -> None:
        payload = data["item"]
        item = self.conversation.upsert(payload)
        if item is not None:
            self.conversation.mark_completed(item)
        if (
            payload.get("type") == "function_call"
            and payload.get("status") in (None, "completed")
            and data.get("response_id") not in self._abandoned
        ):
            self._maybe_call_tool(payload)
        self._raw(data)

    def _on_audio_delta(self, data: dict[str, Any]) -> None:
        delta = data["delta"]
        rid = data.get("response_id")
        if rid in self._abandoned:
            return  # audio of a response the user talked over: never play it
        item_id = data.get("item_id")
        item = self._audio_item
        if item is None or item.id != item_id:
            item = self.conversation.ensure(item_id or f"audio_{rid}", "message", "assistant")
            if item.response_id is None:
                item.response_id = rid
            self._audio_item = item
            self._audio_started = time.monotonic()
        if self._store_audio:
            item.add_audio(delta)
        else:
            item.audio_chars += len(delta)
        self._emit(_audio_delta({"type": "audio.delta", "data": delta, "response_id": rid,
                                 "item_id": item_id}))

    def _on_transcript_delta(self, data: dict[str, Any]) -> None:
        if data.get("response_id") in self._abandoned:
            return
        self._assistant_delta(data, transcript=True)

    def _on_text_delta(self, data: dict[str, Any]) -> None:
        self._assistant_delta(data, transcript=False)

    def _on_transcript_done(self, data: dict[str, Any]) -> None:
        self._assistant_done(data.get("item_id"), data["transcript"], transcript=True)

    def _on_text_done(self, data: dict[str, Any]) -> None:
        self._assistant_done(data.get("item_id"), data["text"], transcript=False)

    def _assistant_delta(self, data: dict[str, Any], *, transcript: bool) -> None:
        # Spoken transcripts and text output are the same normalized event; only the
        # conversation item's field differs.
        delta = data["delta"]
        item_id = data.get("item_id")
        item = self._text_item
        if item is None or item.id != item_id:
            item = self._text_item = (
                self.conversation.ensure(item_id, "message", "assistant") if item_id else None
            )
        if item is not None:
            if transcript:
                item.add_transcript(delta)
            else:
                item.add_text(delta)
        self._emit(_transcript_delta({"type": "transcript.delta", "role": "assistant",
                                      "text": delta, "turn": item_id}))

    def _assistant_done(self, item_id: str | None, text: str, *, transcript: bool) -> None:
        if item_id:
            item = self.conversation.ensure(item_id, "message", "assistant")
            if transcript:
                item.transcript = text
            else:
                item.text = text
        self._emit(_transcript_done({"type": "transcript.done", "role": "assistant",
                                     "text": text, "turn": item_id}))

    def _on_arguments_delta(self, data: dict[str, Any]) -> None:
        item_id = data.get("item_id")
        if item_id:
            self.conversation.ensure(item_id, "function_call").add_arguments(data["delta"])
        self._raw(data)

    def _on_arguments_done(self, data: dict[str, Any]) -> None:
        item_id = data.get("item_id")
        call = {"call_id": data["call_id"], "name": data.get("name"),
                "arguments": data.get("arguments")}
        if item_id:
            item = self.conversation.ensure(item_id, "function_call")
            item.call_id = call["call_id"]
            if isinstance(call["arguments"], str):
                item.arguments = call["arguments"]
            call["name"] = call["name"] or item.name
        # The beta event has no name: output_item.done starts the call then. A response
        # that was cancelled may still finish its arguments: those calls never run.
        if call["name"] and data.get("response_id") not in self._abandoned:
            self._maybe_call_tool(call)
        self._raw(data)

    # ================================================================ tools
    def _maybe_call_tool(self, payload: Mapping[str, Any]) -> None:
        call_id = payload.get("call_id")
        name = payload.get("name")
        if not isinstance(call_id, str) or not call_id or call_id in self._tool_calls:
            return
        if not isinstance(name, str) or not name:
            return
        session = self._session
        if session is None:
            return
        self._tool_calls.add(call_id)
        text = payload.get("arguments")
        text = text if isinstance(text, str) else ""
        arguments: dict[str, Any] | str
        try:
            parsed = json.loads(text) if text.strip() else {}
        except ValueError:
            parsed = text  # not JSON: the invocation answers with an error naming it
        arguments = parsed if isinstance(parsed, dict) else text
        self._tools_running += 1
        try:
            session.spawn(self._run_tool, call_id, name, arguments, name=f"openai tool {name}")
        except SessionClosed:  # the session is ending: the call gets no answer to send
            self._tools_running -= 1
            return
        self._outbox.append(_YIELD)

    async def _run_tool(self, call_id: str, name: str, arguments: dict[str, Any] | str) -> None:
        session = self._session
        assert session is not None
        try:
            result = await session.call_tool(
                ToolCall(call_id=call_id, name=name, arguments=arguments)
            )
            output = result.output_text()
            item_id = _item_id()
            payload = {"id": item_id, "type": "function_call_output", "call_id": call_id,
                       "output": output}
            # Stored before sending: if the link drops now, the renewal replays it.
            self.conversation.upsert({**payload, "status": "completed"})
            self.conversation.attach_output(call_id, output)
            if not any(entry is _AUTO for entry in self._create_queue):
                self._create_queue.append(_AUTO)
            try:
                await self._send({"type": "conversation.item.create", "event_id": _event_id(),
                                  "item": payload})
            except ConnectionClosed:
                pass  # replayed by the renewal
        finally:
            self._tools_running -= 1
        self._pump()
        await self._flush()

    def _pump(self) -> None:
        """Queue the next ``response.create`` when no response is active."""
        if self._active_response is not None or self._create_pending is not None:
            return
        queue = self._create_queue
        if not queue:
            return
        head = queue[0]
        if head is _AUTO and self._tools_running:
            return  # wait for every tool output of this turn before asking again
        queue.popleft()
        event_id = _event_id()
        self._create_pending = event_id
        self._last_create_id = event_id
        self._last_create = head
        event: dict[str, Any] = {"type": "response.create", "event_id": event_id}
        if head:
            event["response"] = head
        self._outbox.append(event)

    # ================================================================ renewal
    async def _recover(self, code: int, reason: str) -> bool:
        """Decide what a closed connection means; ``True`` when the call goes on."""
        policy = self.options.renewal
        expired = self._expired
        if policy.enabled and (code in RECOVERABLE_CLOSE_CODES or expired):
            await self._reconnect(f"session expired (code {code})" if expired
                                  else f"connection closed with code {code}")
            return True
        if code == 1000 and not expired:
            if self._mid_turn():
                self._emit(
                    ErrorEvent(
                        code="closed_mid_turn",
                        message=f"the Realtime server closed the connection cleanly (code "
                        f"{code}) while a response or tool call was in progress",
                        fatal=False,
                    )
                )
            self._emit(_provider_event({"type": "provider", "name": "connection.closed",
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
            else _hint_for(reason.split(".")[-1] if reason else None, None),
        )

    def _mid_turn(self) -> bool:
        return self._active_response is not None or self._tools_running > 0 or bool(
            self._create_pending
        )

    async def _reconnect(self, reason: str) -> None:
        policy = self.options.renewal
        if self.reconnects >= policy.max_reconnects:
            raise ProviderError(
                f"{reason}, and the session already reconnected {self.reconnects} time(s) "
                f"(renewal.max_reconnects={policy.max_reconnects})",
                provider=self.provider,
                code="max_reconnects",
                hint="raise renewal.max_reconnects, or check the network",
            )
        self.reconnects += 1
        self._reconnecting = True
        self._link_up = link = anyio.Event()
        self._emit(_provider_event({"type": "provider", "name": "session.reconnecting",
                                    "payload": {"reason": reason, "reconnect": self.reconnects}}))
        lost = self._active_response
        if lost is not None:
            self._emit(_response_done({"type": "response.done", "response_id": lost,
                                       "status": "failed", "reason": "connection_lost",
                                       "usage": None}))
            if policy.resume_response and not any(e is _AUTO for e in self._create_queue):
                self._create_queue.append(_AUTO)
        if self._create_pending is not None and self._last_create is not None:
            self._create_queue.appendleft(self._last_create)
        self._active_response = None
        self._create_pending = None
        self._audio_item = None
        delay = policy.backoff_initial
        try:
            for attempt in range(1, policy.attempts + 1):
                try:
                    ws, early = await self._open_configured(self._session_payload)
                    break
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
            old, self._ws = self._ws, ws
            self._socket_opened_at = time.monotonic()
            self._expired = False
            replayed = 0
            if self.call_id is None:
                replayed = await self._replay(ws)
            for data in early:
                self._dispatch(data)
        finally:
            self._reconnecting = False
        link.set()
        self._emit(_provider_event({"type": "provider", "name": "session.renewed",
                                    "payload": {"reason": reason, "replayed_items": replayed,
                                                "server_session_id": self.server_session_id,
                                                "reconnect": self.reconnects}}))
        if old is not None and old is not ws:
            with anyio.move_on_after(self.options.close_timeout):
                await self._close_quietly(old, reason="session renewed")
        self._pump()
        await self._flush()

    async def _replay(self, ws: WebSocket) -> int:
        """Recreate the conversation in the new server session, oldest item first."""
        count = 0
        for item in self.conversation.items():
            if not item.completed and item.type != "function_call_output":
                continue
            payload = item.replay_payload()
            if payload is None:
                continue
            self._replaying.add(item.id)
            await ws.send(json.dumps({"type": "conversation.item.create",
                                      "event_id": _event_id(), "item": payload}))
            count += 1
        return count

    async def _renewal_timer(self) -> None:
        """Renew the connection before the server's session time limit, when idle."""
        policy = self.options.renewal
        assert policy.renew_after is not None
        while not self._closing:
            due = self._socket_opened_at + policy.renew_after
            wait = due - time.monotonic()
            if wait > 0:
                await anyio.sleep(wait)
                continue
            with anyio.move_on_after(policy.idle_grace):
                # Idleness depends on many state changes (responses, tools, playback
                # time): polling it every 50 ms is simpler than signalling each one.
                while self._mid_turn() or self._reconnecting or self._playing():  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            if self._closing:
                return
            if self._reconnecting or time.monotonic() < self._socket_opened_at + policy.renew_after:
                continue  # a reconnection happened meanwhile: its socket is fresh
            try:
                await self._reconnect("the session is approaching its time limit")
            except ProviderError as exc:
                self._emit(ErrorEvent(code=exc.code or "renewal_failed", message=exc.message,
                                      fatal=True))
                return

    def _playing(self) -> bool:
        item = self._audio_item
        if item is None or item.truncated_ms is not None:
            return False
        return self._playback_ms(item) < item.audio_ms(self._bytes_per_ms)

    async def _close_quietly(self, ws: WebSocket, reason: str = "") -> None:
        try:
            await ws.close(1000, reason)
        except Exception as exc:  # closing a dead socket must not break the cancel path
            logger.debug("closing the websocket failed: %s", exc)


def _add_usage(total: dict[str, Any], usage: Mapping[str, Any]) -> None:
    for key, value in usage.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, Mapping):
            _add_usage(total.setdefault(key, {}), value)


def _hint_for(code: Any, param: Any) -> str | None:
    if code == "beta_api_shape_disabled":
        return "the Realtime beta protocol is switched off; masquerade speaks GA only"
    if code in ("unknown_parameter", "invalid_value", "missing_required_parameter"):
        where = f" ({param})" if param else ""
        return f"fix the session options{where}; see masquerade_openai.RealtimeOptions"
    if code == "invalid_api_key":
        return "check OPENAI_API_KEY (or the api_key you passed)"
    return None
