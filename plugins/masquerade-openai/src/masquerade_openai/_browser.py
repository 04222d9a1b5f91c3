"""Browser frontends: a WebRTC call for the audio, a sideband websocket for the backend.

With ``transport="webrtc"`` the browser talks to the model over WebRTC and the backend
keeps control of the same call over a *sideband* websocket (``/v1/realtime?call_id=``):
it sees every event, answers tool calls and updates the session. :class:`BrowserCall`
gets the call in one of two ways:

- **through the backend** (the "unified interface"): :meth:`BrowserCall.answer_offer`
  posts the browser's SDP offer with the session configuration built from the request
  (instructions, voice, turn detection, the tools), so the browser never declares tools
  and never holds a key; it returns the SDP answer for the browser;
- **by the frontend**: :meth:`BrowserCall.client_secret` mints an ephemeral key with the
  same configuration, the frontend creates the call itself, reports the call id, and
  :meth:`BrowserCall.attach` attaches the sideband.

Until the call is attached, :meth:`BrowserCall.poll` reports the session ``not_ready``
(provider status ``awaiting_offer``), so ``provisioning_timeout`` bounds how long the
session waits for the browser.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel

from masquerade import ConfigurationError, ProviderError, SessionClosed
from masquerade.provider import ProvisioningStatus

from ._calls import ClientSecret, RealtimeCalls
from ._link import RealtimeLink
from ._options import RealtimeOptions, websocket_url
from ._renewal import Renewal

__all__ = ["BrowserCall"]

#: How long one provisioning poll waits for the call to be attached before answering
#: ``not_ready`` (so readiness follows the attach at once, not at the next poll).
POLL_WAIT_S = 1.0


class BrowserCall:
    """The WebRTC call of one browser-frontend session.

    Attributes:
        call_id: the call's id, once created (or reported) and attached.
        attached: set once the sideband completed its handshake.
    """

    def __init__(
        self,
        *,
        options: RealtimeOptions,
        link: RealtimeLink,
        renewal: Renewal,
        calls: RealtimeCalls,
    ) -> None:
        self.options = options
        self.link = link
        self.renewal = renewal
        self.calls = calls
        self.call_id: str | None = None
        self.attached = anyio.Event()
        self.failure: BaseException | None = None
        self._attaching = False

    def config(self) -> dict[str, Any]:
        """The session configuration the call (or the client secret) is created with."""
        return {"model": self.options.resolved_model, **self.renewal.session_payload}

    async def answer_offer(self, sdp: str) -> tuple[str, list[Any]]:
        """Create the call from the browser's offer, attach the sideband; returns the SDP
        answer and the sideband's handshake events."""
        self._claim()
        try:
            # Shielded (the request has its own timeout): a call created at the provider
            # must be known, so that the cancel path can hang it up even when the session
            # is ending meanwhile.
            with anyio.CancelScope(shield=True):
                answer = await self.calls.create_call(sdp, self.config())
        except BaseException:
            self._attaching = False
            raise
        self.call_id = answer.call_id
        if self.link.closing:  # the session ended while the call was being created
            with anyio.CancelScope(shield=True):
                await self.calls.hangup(answer.call_id)
            raise SessionClosed("the session ended while its call was being created",
                                hint="start a new session for a new call")
        await anyio.lowlevel.checkpoint()  # a cancellation that waited lands here
        early = await self._attach(answer.call_id)
        return answer.sdp, early

    async def attach(self, call_id: str) -> list[Any]:
        """Attach the sideband to a call the frontend created; returns its handshake
        events."""
        if not call_id or not isinstance(call_id, str):
            raise ConfigurationError("call_id is empty",
                                     hint="pass the id from the call's Location header")
        self._claim()
        return await self._attach(call_id)

    async def client_secret(self, expires_after_s: int | None = None) -> ClientSecret:
        """An ephemeral key for a frontend that creates the call itself, configured like
        :meth:`config` (tools included)."""
        return await self.calls.client_secret(self.config(), expires_after_s=expires_after_s)

    async def poll(self) -> ProvisioningStatus:
        if self.failure is not None:
            raise self.failure
        if not self.attached.is_set():
            with anyio.move_on_after(POLL_WAIT_S):
                await self.attached.wait()
        if self.attached.is_set():
            return ProvisioningStatus(state="ready", provider_status="call.attached")
        if self.failure is not None:
            raise self.failure
        return ProvisioningStatus(state="not_ready", provider_status="awaiting_offer")

    def _claim(self) -> None:
        if self._attaching or self.call_id is not None:
            raise ConfigurationError(
                "this session already has its call",
                hint="one session serves one WebRTC call: start a new session for another",
            )
        if self.link.closing:
            raise ConfigurationError("the session has ended",
                                     hint="start a new session for a new call")
        self._attaching = True

    async def _attach(self, call_id: str) -> list[Any]:
        self.call_id = call_id
        self.renewal.call_id = call_id
        self.link.url = websocket_url(self.options.model_copy(update={"call_id": call_id}))
        try:
            early = await self.link.start(self.renewal.session_payload)
        except ProviderError as exc:
            self.failure = exc
            raise
        self.attached.set()
        return early
