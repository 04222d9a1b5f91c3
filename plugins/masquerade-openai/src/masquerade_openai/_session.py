"""One OpenAI Realtime session: the handle masquerade drives and applications steer.

:class:`OpenAIRealtimeSession` is both the provider session masquerade drives
(``connect`` / ``end`` / ``result``) and the OpenAI-specific handle an application uses
while the call runs. Reach it from a masquerade session with
:func:`masquerade_openai.realtime`::

    async with host.session(SessionRequest(provider="openai", tools=[lookup_order])) as s:
        rt = masquerade_openai.realtime(s)
        await rt.send_text("Where is my order A1001?")
        async for event in s.events():
            ...

It is a thin facade over the parts of a session, each in its own module:

- :mod:`._link`: the websocket, the handshake, sending and the outbox;
- :mod:`._translate`: server events -> normalized events (the handler table, the
  receive loop);
- :mod:`._conversation`: the conversation store;
- :mod:`._turns`: response sequencing and barge-in;
- :mod:`._tools`: the tool round trip;
- :mod:`._renewal`: reconnecting and renewing the session;
- :mod:`._input`: what the application sends (text, audio, responses, barge-in);
- :mod:`._browser`: the WebRTC call of a browser frontend (``transport="webrtc"``);
- :mod:`._parts`: how the parts are built, bound to the session and unbound.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from masquerade import ConfigurationError, ProviderError
from masquerade.events import JoinCredentials, trusted_model
from masquerade.provider import ProviderOutcome, ProvisioningStatus

from ._browser import BrowserCall
from ._calls import ClientSecret
from ._conversation import ConversationItem, RealtimeConversation
from ._input import MAX_APPEND_BYTES, RealtimeInput
from ._lookup import register
from ._options import RealtimeOptions, deep_merge
from ._parts import SessionParts
from ._shared import event_id, noop_emit, per_object

if TYPE_CHECKING:
    from masquerade import Session, SessionRequest

    from ._calls import RealtimeCalls

__all__ = ["OpenAIRealtimeSession", "MAX_APPEND_BYTES"]

logger = logging.getLogger("masquerade_openai")



class OpenAIRealtimeSession(RealtimeInput):
    """A GA Realtime session over one websocket (renewed as needed).

    Created by :meth:`OpenAIRealtimeProvider.create`, which opens the socket and completes
    the handshake: ``session.created`` has arrived and the configuring ``session.update``
    was acknowledged with ``session.updated``. :meth:`connect` then runs the receive loop.

    Attributes:
        id: the provider session id (the first server session's id; stable across
            renewals; for a browser frontend, an id of its own from the start).
            :attr:`server_session_id` is the current one.
        call_id: the SIP or WebRTC call the session is attached to, if any.
        requires_polling: ``True`` for a browser frontend until its call is attached.
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
        self._call_id = options.call_id
        self.conversation = RealtimeConversation()
        self._calls = calls
        self._session: Session | None = None
        self._usage: dict[str, Any] = {}  # the final usage, once detached from the session
        self._early: list[Any] = []
        self._tools_declared = False  # in the first configuration already
        self._parts = parts = SessionParts(provider=provider, options=options, url=url,
                                           headers=headers, calls=calls,
                                           conversation=self.conversation)
        self._link = parts.link
        self._turns = parts.turns
        self._translator = parts.translator
        self._renewal = parts.renewal
        self._browser = parts.browser
        if self._browser is not None:
            self._link.session_id = f"rt_{uuid.uuid4().hex[:16]}"
            self.requires_polling = True

    def __repr__(self) -> str:
        where = f"call_id={self.call_id!r}" if self.call_id else f"model={self.model!r}"
        return f"<OpenAIRealtimeSession {self.id or '(connecting)'} {where}>"

    # ================================================================ properties
    @property
    def id(self) -> str:
        return self._link.session_id

    @property
    def call_id(self) -> str | None:
        browser = self._browser
        return browser.call_id if browser is not None else self._call_id

    @property
    def model(self) -> str:
        return self.options.resolved_model

    @property
    def server_session_ids(self) -> list[str]:
        """Every server session id so far, oldest first (one per renewal)."""
        return self._link.server_session_ids

    @property
    def server_session_id(self) -> str:
        """The id of the current server session (changes when the session is renewed)."""
        ids = self._link.server_session_ids
        return ids[-1] if ids else ""

    @property
    def session_config(self) -> dict[str, Any]:
        return self._link.session_config

    @property
    def session_payload(self) -> dict[str, Any]:
        """The session configuration sent so far (every new connection gets it; a copy:
        sessions of the same options share it)."""
        return copy.deepcopy(self._renewal.session_payload)

    @property
    def reconnects(self) -> int:
        return self._renewal.reconnects

    @property
    def usage(self) -> dict[str, Any]:
        """Token usage summed over every ``response.done`` so far."""
        session = self._session
        return session.usage if session is not None else self._usage

    @property
    def response_active(self) -> bool:
        """Whether a response is in progress (or requested and not yet started)."""
        return self._turns.response_active

    @property
    def close_code(self) -> int | None:
        """The close code of the last connection that closed, if one did."""
        info = self._link.close_info
        return info[0] if info else None

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

    # ================================================================ ProviderSession
    async def open(self, tools: list[dict[str, Any]] | None = None) -> None:
        """Open the socket and complete the handshake (called by the provider's create).

        A browser-frontend session opens nothing yet: its configuration (with ``tools``,
        which the call is created with) waits for the browser's offer.
        """
        personality = self.request.personality if self.request is not None else None
        if tools:
            payload = self.options.session_payload(personality)
            payload["tools"] = tools
        else:  # the same for every session of these options: built once, never changed
            payload = _shared_payload(self.options, personality)
        self._tools_declared = bool(tools)
        self._renewal.session_payload = payload
        if self._browser is None:
            self._early = await self._link.start(payload)
        register(self.id, self)

    async def poll(self) -> ProvisioningStatus:
        if self._browser is not None:
            return await self._browser.poll()
        return ProvisioningStatus(state="ready", provider_status="session.updated")

    # ================================================================ browser frontends
    async def answer_offer(self, sdp: str) -> str:
        """Answer a browser's WebRTC SDP offer (``transport="webrtc"`` sessions).

        Creates the call with the session's configuration (instructions, voice, turn
        detection and the tools: the browser declares none), attaches the sideband
        websocket by the new call's id, and returns the SDP answer for the browser's
        ``setRemoteDescription``. The session becomes ready right after. This is also the
        seam a call service uses: any provider session with an ``answer_offer(sdp)``
        coroutine can answer a browser's offer.
        """
        browser = self._require_browser("answer_offer")
        answer, self._early = await browser.answer_offer(sdp)
        return answer

    async def attach(self, call_id: str) -> None:
        """Attach the sideband to a call the frontend created itself (with a key from
        :meth:`client_secret`); ``call_id`` is the last part of the call's ``Location``."""
        self._early = await self._require_browser("attach").attach(call_id)

    async def client_secret(self, expires_after_s: int | None = None) -> ClientSecret:
        """Mint an ephemeral key (``ek_...``) configured like this session, tools included,
        for a frontend that creates the WebRTC call itself (then :meth:`attach`)."""
        return await self._require_browser("client_secret").client_secret(expires_after_s)

    def _require_browser(self, what: str) -> BrowserCall:
        if self._browser is None:
            raise ConfigurationError(
                f"{what} needs a browser-frontend session",
                hint='start the session with options={"transport": "webrtc"}',
            )
        return self._browser

    async def join_credentials(self) -> JoinCredentials:
        public = {"sessionId": self.id, "model": self.model}
        if self.call_id:
            public["callId"] = self.call_id
        kind = "webrtc" if self._browser else "sip" if self.call_id else "websocket"
        # Built from trusted values (model_construct would call the default factory of
        # ``secrets`` through pydantic's signature inspection: four times the cost).
        return trusted_model(JoinCredentials, {
            "provider": self.provider, "kind": kind, "public": public, "secrets": {}
        }, _JOIN_FIELDS)

    def connect(self, session: Session) -> Coroutine[Any, Any, None]:
        """Run the call: declare the tools, then read events until the conversation ends.

        The receive loop itself (:meth:`Renewal.run`) is the coroutine returned, with the
        start of the call as its first step: no frame of this method stays suspended
        for the call's life (thousands of idle sessions each hold their chain of frames).
        """
        return self._renewal.run(self._start(session))

    async def _start(self, session: Session) -> None:
        """Declare the tools, dispatch the handshake's events, send what is queued."""
        self._session = session
        # One call less per event on the hot path: every part calls the session's emit.
        self._emit = self._parts.bind(session)  # type: ignore[method-assign,assignment]
        register(session.id, self)
        link = self._link
        tools = [session.host.tool_schema(t, "openai") for t in session.tools.values()]
        if tools and not self._tools_declared:
            update = {"type": "realtime", "tools": tools}
            renewal = self._renewal
            renewal.session_payload = deep_merge(renewal.session_payload, update)
            await link.send(
                {"type": "session.update", "event_id": event_id(), "session": update},
                early=True,
            )
        assert link.configured is not None
        link.configured.set()
        early, self._early = self._early, []
        for data in early:
            self._translator.dispatch(data)
        link.forget_handshake()
        request = self.request
        if request is not None and request.start_script:
            self._turns.request({"instructions": f"Say exactly: {request.start_script}"})
        await link.flush()

    async def end(self, reason: str) -> None:
        """Close the websocket (and hang up the call for ``call_id`` sessions)."""
        link = self._link
        link.closing = True
        if self.call_id and self.options.hangup_on_end and self._calls is not None:
            try:  # a call the caller already ended answers 404: hangup returns False
                await self._calls.hangup(self.call_id)
            except ProviderError as exc:
                logger.warning("hanging up call %s failed: %s", self.call_id, exc)
        ws = link.ws
        if ws is not None:
            await link.close_quietly(ws)
        self.conversation.close()

    async def result(self) -> ProviderOutcome:
        extra: dict[str, Any] = {
            "server_session_ids": list(self.server_session_ids),
            "reconnects": self.reconnects,
            "items": len(self.conversation),
        }
        if self._link.close_info is not None:
            extra["close_code"], extra["close_reason"] = self._link.close_info
        if self.call_id:
            extra["call_id"] = self.call_id
        if self._session is not None:
            self._usage = dict(self._session.usage)
        outcome = ProviderOutcome(extra=extra)  # usage: the session's own sum
        self._detach()
        return outcome

    def _detach(self) -> None:
        """Drop every reference into the ended masquerade session and between the parts
        (the last call a session makes is :meth:`result`), so reference counting alone
        frees both; the conversation and the counters stay readable."""
        self._session = None
        self._emit = noop_emit  # type: ignore[method-assign]
        self._parts.unbind()



_JOIN_FIELDS = frozenset({"provider", "kind", "public"})
_PAYLOADS: dict[tuple[int, str | None], tuple[RealtimeOptions, dict[str, Any]]] = {}


def _shared_payload(options: RealtimeOptions, instructions: str | None) -> dict[str, Any]:
    """``options.session_payload(instructions)``, one object per distinct options object
    and instructions (the provider shares its options between sessions): a session's
    payload lives as long as the session, and is replaced, never changed, when the
    session is updated."""
    return per_object(
        _PAYLOADS, (id(options), instructions), options,
        lambda: options.session_payload(instructions),
    )
