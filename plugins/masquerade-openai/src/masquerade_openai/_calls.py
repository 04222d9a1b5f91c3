"""Realtime REST endpoints: SIP and WebRTC call control, and ephemeral client secrets.

An incoming SIP call arrives as a signed ``realtime.call.incoming`` webhook (see
:func:`masquerade_openai.verify_webhook`). Answer it, then attach a session to it::

    calls = RealtimeCalls()                         # OPENAI_API_KEY, OPENAI_BASE_URL
    event = verify_webhook(body, headers, secret)
    if await calls.accept(event.call_id, {"model": "gpt-realtime",
                                          "instructions": "You are a receptionist."}):
        request = SessionRequest(provider="openai", options={"call_id": event.call_id})
        async with host.session(request) as session:
            ...                                     # ends with a hangup (cancel path)

``accept`` answers ``False`` when the caller is already gone (HTTP 404): a normal outcome
of telephony, not an error.

For browser frontends, :meth:`RealtimeCalls.create_call` posts a WebRTC SDP offer with the
session configuration (the "unified interface") and returns the SDP answer and the call id,
and :meth:`RealtimeCalls.client_secret` mints an ephemeral key (``ek_...``) for a frontend
that creates the call itself.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from masquerade import (
    ConfigurationError,
    ProviderError,
    redact,
    register_secret,
    register_session_secret,
)
from masquerade.errors import EventParseError
from masquerade.events import decode_json

from ._options import DEFAULT_BASE_URL
from ._sdp import check_sdp

__all__ = ["RealtimeCalls", "ClientSecret", "CallAnswer"]


class ClientSecret(BaseModel):
    """An ephemeral Realtime key (``ek_...``) for a frontend, and the session it configures.

    The value is a secret: it never shows in a repr, a log line or a span. Hand it to the
    frontend with ``secret.value.get_secret_value()``; it authenticates ``POST
    /v1/realtime/calls`` (and websockets) until ``expires_at`` (seconds since the epoch).
    """

    model_config = ConfigDict(frozen=True)

    value: SecretStr
    expires_at: int
    session: dict[str, Any]

    def reveal(self) -> dict[str, Any]:
        """``{"value": ..., "expires_at": ...}`` in wire form, for the frontend only."""
        return {"value": self.value.get_secret_value(), "expires_at": self.expires_at}


class CallAnswer(BaseModel):
    """What ``POST /v1/realtime/calls`` answered: the SDP answer and the new call's id."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    sdp: str


def call_id_from_location(location: str) -> str:
    """The call id at the end of a ``Location`` header (``/v1/realtime/calls/rtc_...``)."""
    return location.rstrip("/").rsplit("/", 1)[-1]


class RealtimeCalls:
    """The ``/v1/realtime/calls/{call_id}/...`` endpoints over httpx.

    Args:
        api_key: the API key (default: ``OPENAI_API_KEY``).
        base_url: the REST base URL (default: ``OPENAI_BASE_URL`` or the public API).
        http_client: an ``httpx.AsyncClient`` to use (the caller then owns it).
        timeout: seconds per request.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        provider: str = "openai",
    ) -> None:
        self._api_key = api_key
        if api_key:
            register_secret(api_key)
        self.base_url = (
            base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        ).rstrip("/")
        self._client = http_client
        self._owns_client = http_client is None
        self._timeout = timeout
        self.provider = provider

    def __repr__(self) -> str:
        return f"<RealtimeCalls {self.base_url}>"

    async def __aenter__(self) -> RealtimeCalls:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------ endpoints
    async def accept(
        self, call_id: str, config: Mapping[str, Any] | None = None, **fields: Any
    ) -> bool:
        """Answer an incoming call with a session configuration (GA session fields;
        ``type: "realtime"`` is added). ``False`` when the caller already hung up (404)."""
        body: dict[str, Any] = {"type": "realtime", **dict(config or {}), **fields}
        response = await self._post(call_id, "accept", body)
        if response.status_code == 404:
            return False
        self._check(response, call_id, "accept")
        return True

    async def reject(self, call_id: str, status_code: int = 603) -> bool:
        """Decline an incoming call with a SIP status code (603 Decline by default).
        ``False`` when the call no longer exists."""
        if not 400 <= status_code <= 699:
            raise ConfigurationError(
                f"SIP status code {status_code} is not a final error response",
                hint="use a 4xx, 5xx or 6xx code, e.g. 486 (Busy Here) or 603 (Decline)",
            )
        response = await self._post(call_id, "reject", {"status_code": status_code})
        if response.status_code == 404:
            return False
        self._check(response, call_id, "reject")
        return True

    async def hangup(self, call_id: str) -> bool:
        """End an active SIP or WebRTC call. ``False`` when it had already ended."""
        response = await self._post(call_id, "hangup", None)
        if response.status_code == 404:
            return False
        self._check(response, call_id, "hangup")
        return True

    async def refer(self, call_id: str, target_uri: str) -> None:
        """Transfer the call with a SIP REFER (``tel:+14155550123``, ``sip:agent@...``)."""
        if not target_uri.startswith(("tel:", "sip:", "sips:")):
            raise ConfigurationError(
                f"refer target {target_uri!r} is not a tel: or sip: URI",
                hint="use e.g. tel:+14155550123 or sip:agent@example.com",
            )
        response = await self._post(call_id, "refer", {"target_uri": target_uri})
        self._check(response, call_id, "refer")

    async def create_call(self, sdp: str, session: Mapping[str, Any] | None = None) -> CallAnswer:
        """Create a WebRTC call from a browser's SDP offer, configured by ``session`` (GA
        session fields; ``type: "realtime"`` is added): ``POST /v1/realtime/calls`` as
        multipart form data (``sdp`` and ``session``). Returns the SDP answer for the
        browser and the call id (from the ``Location`` header) for the sideband."""
        check_sdp(sdp, "offer")
        files: dict[str, Any] = {"sdp": (None, sdp, "application/sdp")}
        if session is not None:
            config = {"type": "realtime", **dict(session)}
            files["session"] = (None, json.dumps(config), "application/json")
        response = await self._request("realtime/calls", "create of a call", files=files,
                                       headers={"Accept": "application/sdp"})
        self._check(response, None, "create")
        location = response.headers.get("location") or ""
        call_id = call_id_from_location(location)
        if not call_id.startswith("rtc_") and not location:
            raise ProviderError(
                "the call was created but the answer has no Location header with its id",
                provider=self.provider,
                hint="the sideband needs the call id; check the base URL points at the API",
            )
        answer = response.text
        check_sdp(answer, "answer", provider=self.provider)
        return CallAnswer(call_id=call_id, sdp=answer)

    async def client_secret(
        self, session: Mapping[str, Any] | None = None, *, expires_after_s: int | None = None
    ) -> ClientSecret:
        """Mint an ephemeral key for a frontend: ``POST /v1/realtime/client_secrets`` with
        the session configuration every session made with it gets (``type: "realtime"`` is
        added) and an expiry (10-7200 s; the API's default is 600). The key is registered
        as a secret of the running session (masked in logs, spans and errors)."""
        body: dict[str, Any] = {"session": {"type": "realtime", **dict(session or {})}}
        if expires_after_s is not None:
            if not 10 <= expires_after_s <= 7200:
                raise ConfigurationError(
                    f"expires_after_s={expires_after_s} is outside 10-7200 seconds",
                    hint="ephemeral keys live between 10 seconds and 2 hours",
                )
            body["expires_after"] = {"anchor": "created_at", "seconds": expires_after_s}
        response = await self._request("realtime/client_secrets", "minting a client secret",
                                       json_body=body)
        self._check(response, None, "client secret")
        try:
            data = decode_json(response.content)
        except EventParseError:
            data = None
        value = data.get("value") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise ProviderError("the client secret answer has no 'value'",
                                provider=self.provider)
        register_session_secret(value)
        assert isinstance(data, dict)
        found = data.get("session")
        expires = data.get("expires_at")
        return ClientSecret(value=SecretStr(value),
                            expires_at=expires if isinstance(expires, int) else 0,
                            session=found if isinstance(found, dict) else {})

    # ------------------------------------------------------------ plumbing
    async def _request(
        self,
        path: str,
        what: str,
        *,
        json_body: Any = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        retryable: bool = False,
    ) -> httpx.Response:
        """POST to ``path``; network failures become a :class:`ProviderError` naming
        ``what``. Only requests that are safe to repeat are ``retryable`` (creating a call
        or a key twice would create two)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        sent = {"Authorization": f"Bearer {self._key()}", **dict(headers or {})}
        try:
            return await self._client.post(f"{self.base_url}/{path}", headers=sent,
                                           json=json_body, files=files)
        except httpx.TimeoutException:
            raise ProviderError(f"{what} timed out", provider=self.provider,
                                retryable=retryable) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                redact(f"{what} failed: {type(exc).__name__}: {exc}"),
                provider=self.provider,
                retryable=retryable,
                hint="check the base URL and the network",
            ) from None

    def _key(self) -> str:
        key = self._api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigurationError(
                "no OpenAI API key for call control: OPENAI_API_KEY is not set",
                hint="export OPENAI_API_KEY or pass RealtimeCalls(api_key=...)",
            )
        register_secret(key)
        return key

    async def _post(self, call_id: str, action: str, body: dict[str, Any] | None) -> httpx.Response:
        if not call_id:
            raise ConfigurationError("call_id is empty", hint="pass the webhook's data.call_id")
        # Call control is safe to retry (a repeated hangup finds the call gone).
        return await self._request(f"realtime/calls/{quote(call_id, safe='')}/{action}",
                                   f"{action} of call {call_id}", json_body=body,
                                   retryable=True)

    def _check(self, response: httpx.Response, call_id: str | None, action: str) -> None:
        status = response.status_code
        if status < 400:
            return
        code: str | None = None
        detail = ""
        try:
            data = decode_json(response.content)
            error = data.get("error") if isinstance(data, dict) else None
            if isinstance(error, dict):
                code = error.get("code") or error.get("type")
                detail = str(error.get("message") or "")[:500]
        except EventParseError:
            detail = response.text[:200]
        retry_after: float | None = None
        raw = response.headers.get("retry-after")
        if raw:
            try:
                retry_after = float(raw)
                if not math.isfinite(retry_after) or retry_after < 0:
                    retry_after = None
            except ValueError:
                retry_after = None
        hint = None
        if status == 401:
            hint = "the API key was rejected: check OPENAI_API_KEY"
        elif status == 404:
            hint = "the call has ended or never existed"
        what = f"{action} of call {call_id}" if call_id else action
        raise ProviderError(
            f"{what} failed with HTTP {status}"
            + (f": {detail}" if detail else ""),
            provider=self.provider,
            status_code=status,
            code=code,
            retryable=status == 429 or status >= 500,
            retry_after=retry_after,
            hint=hint,
        )
