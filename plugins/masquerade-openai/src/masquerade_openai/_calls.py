"""SIP call control for the Realtime API: accept, reject, hang up, transfer.

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
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from masquerade import ConfigurationError, ProviderError, redact, register_secret
from masquerade.errors import EventParseError
from masquerade.events import decode_json

from ._options import DEFAULT_BASE_URL

__all__ = ["RealtimeCalls"]


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

    # ------------------------------------------------------------ plumbing
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
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        url = f"{self.base_url}/realtime/calls/{quote(call_id, safe='')}/{action}"
        headers = {"Authorization": f"Bearer {self._key()}"}
        try:
            if body is None:
                return await self._client.post(url, headers=headers)
            return await self._client.post(url, headers=headers, json=body)
        except httpx.TimeoutException:
            raise ProviderError(
                f"{action} of call {call_id} timed out",
                provider=self.provider,
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                redact(f"{action} of call {call_id} failed: {type(exc).__name__}: {exc}"),
                provider=self.provider,
                retryable=True,
                hint="check the base URL and the network",
            ) from None

    def _check(self, response: httpx.Response, call_id: str, action: str) -> None:
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
        raise ProviderError(
            f"{action} of call {call_id} failed with HTTP {status}"
            + (f": {detail}" if detail else ""),
            provider=self.provider,
            status_code=status,
            code=code,
            retryable=status == 429 or status >= 500,
            retry_after=retry_after,
            hint=hint,
        )
