"""An async REST client for Runway's realtime avatar API (httpx; asyncio and trio).

::

    async with RunwayClient() as client:          # RUNWAYML_API_SECRET, RUNWAYML_BASE_URL
        session_id = await client.create_realtime_session(
            {"model": "gwm1_avatars", "avatar": {"type": "runway-preset",
                                                 "presetId": "cooking-teacher"}}
        )
        status = await client.retrieve_realtime_session(session_id)
        async for conversation in client.iter_avatar_conversations(limit=50):
            print(conversation.id, conversation.status)

**Retries** follow Runway's official SDK: 408, 409, 429, 5xx and connection errors are
retried up to ``max_retries`` times with a backoff of ``0.5 s * 2**n`` capped at 8 s
(minus up to 25 % jitter); ``retry-after-ms`` / ``retry-after`` are honoured when they
are between 0 and 60 s, and ``x-should-retry`` overrides the decision. One exception:
requests that start something (``create``, ``consume``, ``connect_backend``) are never
sent twice. Runway takes no idempotency key, so a second ``create`` would start (and
bill) a second session; only a connection that failed before the request was sent is
retried for them.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, TypeVar

import anyio
import certifi
import httpx
from pydantic import BaseModel, ValidationError

from masquerade import ConfigurationError, register_secret, register_session_secret
from masquerade.errors import EventParseError
from masquerade.events import decode_json

from ._errors import (
    RunwayConnectionError,
    RunwayError,
    RunwayProtocolError,
    RunwayTimeout,
    status_error,
)
from ._models import (
    Avatar,
    AvatarConversation,
    AvatarConversationSummary,
    Page,
    RealtimeSession,
    RoomCredentials,
)
from ._resources import AvatarsAPI, ConversationsAPI, DocumentsAPI, UploadsAPI

__all__ = ["RunwayClient", "DEFAULT_BASE_URL", "API_VERSION"]

logger = logging.getLogger("masquerade.runway")

DEFAULT_BASE_URL = "https://api.dev.runwayml.com"
API_VERSION = "2024-11-06"
BASE_URL_ENV = "RUNWAYML_BASE_URL"
API_KEY_ENV = "RUNWAYML_API_SECRET"

_RETRY_STATUSES = frozenset({408, 409, 429})
# Connection failures that happen before a byte of the request is sent: always safe.
_BEFORE_SEND = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

ModelT = TypeVar("ModelT", bound=BaseModel)

_ssl_context: ssl.SSLContext | None = None


def _shared_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes a few hundred milliseconds: do it once per process,
    # not once per connection pool.
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = ssl.create_default_context(cafile=certifi.where())
    return _ssl_context


class RunwayClient:
    """Runway's REST API: realtime sessions, avatar conversations, avatars.

    Args:
        api_key: the API key (default: ``RUNWAYML_API_SECRET``).
        base_url: the API base (default: ``RUNWAYML_BASE_URL``, else
            ``https://api.dev.runwayml.com``).
        max_retries: retries of a failed request (not counting the first try).
        timeout: seconds for a whole request; ``connect_timeout`` for connecting.
        retry_base, retry_max: the backoff's first delay and its cap, in seconds.
        max_concurrency: requests in flight at once; more wait their turn (also the size
            of the connection pool). Waiting on a semaphore stays cheap with thousands of
            sessions, where a long queue inside the connection pool does not.
        transport: an httpx transport (for tests and proxies).

    Raises :class:`~masquerade.ConfigurationError` when there is no API key.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        max_retries: int = 2,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        retry_base: float = 0.5,
        retry_max: float = 8.0,
        max_concurrency: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not key:
            raise ConfigurationError(
                "no Runway API key was given",
                hint=f"set {API_KEY_ENV} (or pass api_key=...); to run without Runway, "
                "start the emulator with `masquerade emulate runway`",
            )
        register_secret(key)
        self._api_key = key
        self.base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"Runway base URL {self.base_url!r} is not an http(s) URL",
                hint=f"set {BASE_URL_ENV} to something like {DEFAULT_BASE_URL}",
            )
        self.max_retries = max_retries
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._transport = transport
        self.max_concurrency = max_concurrency
        self._http: httpx.AsyncClient | None = None
        self._gate: anyio.Semaphore | None = None
        #: Requests sent (including retries), for tests and benchmarks.
        self.requests_sent = 0
        #: Custom avatars and their usage (:class:`~masquerade_runway.AvatarsAPI`).
        self.avatars = AvatarsAPI(self)
        #: Knowledge documents (:class:`~masquerade_runway.DocumentsAPI`).
        self.documents = DocumentsAPI(self)
        #: File uploads (:class:`~masquerade_runway.UploadsAPI`).
        self.uploads = UploadsAPI(self)
        #: Conversations, their deletion and recordings
        #: (:class:`~masquerade_runway.ConversationsAPI`).
        self.conversations = ConversationsAPI(self)

    def __repr__(self) -> str:
        return f"<RunwayClient base_url={self.base_url!r}>"

    # ------------------------------------------------------------------ lifecycle
    def _client(self) -> httpx.AsyncClient:
        # Created on first use, so that constructing a client binds it to no event loop.
        if self._http is None:
            self._gate = anyio.Semaphore(self.max_concurrency)
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self._timeout,
                limits=httpx.Limits(
                    max_connections=self.max_concurrency,
                    max_keepalive_connections=self.max_concurrency,
                ),
                transport=self._transport,
                verify=_shared_ssl_context(),
                headers={"User-Agent": "masquerade-runway"},
            )
        return self._http

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying connection pool (for requests outside the API, e.g. a recording
        download: they carry no API key)."""
        return self._client()

    async def aclose(self) -> None:
        """Close the connection pool (the client can be used again afterwards)."""
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def __aenter__(self) -> RunwayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ requests
    def _backoff(self, attempt: int) -> float:
        delay = min(self.retry_base * 2.0**attempt, self.retry_max)
        return delay * (1.0 - 0.25 * random.random())

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        bearer: str | None = None,
        resend: bool = True,
    ) -> httpx.Response:
        """Send one API request with retries; return the successful response.

        ``bearer`` replaces the API key (``consume`` authenticates with the session key).
        With ``resend=False`` the request is retried only when it was never sent.
        Raises a :class:`~masquerade_runway.RunwayError` subclass.
        """
        headers = {
            "Authorization": f"Bearer {bearer or self._api_key}",
            "X-Runway-Version": API_VERSION,
            "Accept": "application/json" if method != "DELETE" else "*/*",
        }
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            delay: float | None = None
            self.requests_sent += 1
            started = time.perf_counter()
            http = self._client()
            assert self._gate is not None
            try:
                async with self._gate:
                    response = await http.request(
                        method, path, json=json, params=query or None, headers=headers
                    )
            except _BEFORE_SEND as exc:
                error: RunwayError = RunwayConnectionError(
                    f"could not connect to Runway at {self.base_url} for {method} {path}: "
                    f"{type(exc).__name__}",
                    retryable=True,
                    hint="check the network and RUNWAYML_BASE_URL; this is usually transient",
                )
                delay = self._backoff(attempt)
            except httpx.TimeoutException as exc:
                error = RunwayTimeout(
                    f"Runway did not answer {method} {path} in time ({type(exc).__name__})",
                    retryable=resend,
                    hint=None
                    if resend
                    else "the request may have reached Runway: it was not sent again; "
                    "check the account's sessions before creating another",
                )
                delay = self._backoff(attempt) if resend else None
            except httpx.TransportError as exc:
                error = RunwayConnectionError(
                    f"the connection to Runway broke during {method} {path} "
                    f"({type(exc).__name__})",
                    retryable=resend,
                    hint=None
                    if resend
                    else "the request may have reached Runway: it was not sent again; "
                    "check the account's sessions before creating another",
                )
                delay = self._backoff(attempt) if resend else None
            else:
                logger.debug(
                    "%s %s -> %d in %.3fs (try %d)",
                    method,
                    path,
                    response.status_code,
                    time.perf_counter() - started,
                    attempt + 1,
                )
                if response.is_success:
                    return response
                error, retry = self._status_error(response, method, path)
                if retry and resend:
                    delay = error.retry_after if error.retry_after is not None else (
                        self._backoff(attempt)
                    )
            if delay is None or attempt >= self.max_retries:
                raise error
            logger.info(
                "%s %s failed (%s); retrying in %.2fs", method, path, error.message, delay
            )
            attempt += 1
            await anyio.sleep(delay)

    def _status_error(
        self, response: httpx.Response, method: str, path: str
    ) -> tuple[RunwayError, bool]:
        message: str | None = None
        try:
            body = decode_json(response.content)
        except EventParseError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            message = body["error"]
        elif response.content:
            message = response.text[:300]
        should = response.headers.get("x-should-retry")
        status = response.status_code
        if should in ("true", "false"):
            retry = should == "true"
        else:
            retry = status in _RETRY_STATUSES or status >= 500
        return (
            status_error(
                status,
                message,
                method=method,
                path=path,
                retry_after=_retry_after(response.headers),
                retryable=retry,
            ),
            retry,
        )

    async def _get_model(
        self, model: type[ModelT], path: str, params: Mapping[str, Any] | None = None
    ) -> ModelT:
        return await self.send_model(model, "GET", path, params=params)

    async def send_model(
        self,
        model: type[ModelT],
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        resend: bool = True,
    ) -> ModelT:
        """Send one request (see :meth:`request`) and parse the answer as ``model``."""
        response = await self.request(method, path, json=body, params=params, resend=resend)
        return _parse(model, response, method, path)

    # ------------------------------------------------------------------ realtime sessions
    async def create_realtime_session(self, body: Mapping[str, Any]) -> str:
        """``POST /v1/realtime_sessions``; returns the new session's id.

        Never sent twice (see the module docs): a failure after sending raises, and the
        session may or may not exist.
        """
        path = "/v1/realtime_sessions"
        response = await self.request("POST", path, json=dict(body), resend=False)
        data = _json(response, "POST", path)
        session_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(session_id, str) or not session_id:
            raise RunwayProtocolError(
                f"Runway answered POST {path} without a session id",
                hint="check RUNWAYML_BASE_URL points at Runway's API",
            )
        return session_id

    async def retrieve_realtime_session(self, session_id: str) -> RealtimeSession:
        """``GET /v1/realtime_sessions/{id}``."""
        return await self._get_model(RealtimeSession, f"/v1/realtime_sessions/{session_id}")

    async def delete_realtime_session(self, session_id: str) -> None:
        """``DELETE /v1/realtime_sessions/{id}``: cancel the session (it ends CANCELLED)."""
        await self.request("DELETE", f"/v1/realtime_sessions/{session_id}")

    async def consume_realtime_session(self, session_id: str, session_key: str) -> RoomCredentials:
        """``POST /v1/realtime_sessions/{id}/consume`` with the session key: the LiveKit
        credentials a frontend joins with. Call it once per session (never resent)."""
        register_session_secret(session_key)
        path = f"/v1/realtime_sessions/{session_id}/consume"
        response = await self.request("POST", path, bearer=session_key, resend=False)
        return _parse(RoomCredentials, response, "POST", path)

    async def connect_backend(self, session_id: str) -> RoomCredentials:
        """``POST /v1/realtime_sessions/{id}/connect_backend``: LiveKit credentials for the
        backend's hidden participant in the session's room (never resent)."""
        path = f"/v1/realtime_sessions/{session_id}/connect_backend"
        response = await self.request("POST", path, resend=False)
        return _parse(RoomCredentials, response, "POST", path)

    # ------------------------------------------------------------------ conversations
    async def retrieve_avatar_conversation(self, conversation_id: str) -> AvatarConversation:
        """``GET /v1/avatar_conversations/{id}`` (the id is the realtime session's id)."""
        return await self._get_model(
            AvatarConversation, f"/v1/avatar_conversations/{conversation_id}"
        )

    async def list_avatar_conversations(
        self,
        *,
        limit: int = 20,
        cursor: str | None = None,
        avatar: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
    ) -> Page[AvatarConversationSummary]:
        """One page of ``GET /v1/avatar_conversations``; pass ``page.next_cursor`` on."""
        params = {
            "limit": limit,
            "cursor": cursor,
            "avatar": avatar,
            "startDate": start_date,
            "endDate": end_date,
        }
        return await self._get_model(
            Page[AvatarConversationSummary], "/v1/avatar_conversations", params
        )

    async def iter_avatar_conversations(
        self, *, limit: int = 20, **filters: str | None
    ) -> AsyncIterator[AvatarConversationSummary]:
        """Every conversation, page after page (``avatar``, ``start_date``, ``end_date``)."""
        cursor: str | None = None
        while True:
            page = await self.list_avatar_conversations(limit=limit, cursor=cursor, **filters)
            for item in page.data:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # ------------------------------------------------------------------ avatars
    async def retrieve_avatar(self, avatar_id: str) -> Avatar:
        """``GET /v1/avatars/{id}`` (as ``client.avatars.retrieve``)."""
        return await self.avatars.retrieve(avatar_id)

    async def list_avatars(self, *, limit: int = 20, cursor: str | None = None) -> Page[Avatar]:
        """One page of ``GET /v1/avatars`` (as ``client.avatars.list``)."""
        return await self.avatars.list(limit=limit, cursor=cursor)

    def iter_avatars(self, *, limit: int = 20) -> AsyncIterator[Avatar]:
        """Every custom avatar, page after page (as ``client.avatars.iter``)."""
        return self.avatars.iter(limit=limit)


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after``, when between 0 and 60."""
    seconds: float | None = None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            seconds = float(raw_ms) / 1000.0
        except ValueError:
            seconds = None
    if seconds is None:
        raw = headers.get("retry-after")
        if raw is not None:
            try:
                seconds = float(raw)
            except ValueError:
                try:
                    seconds = parsedate_to_datetime(raw).timestamp() - time.time()
                except (TypeError, ValueError):
                    seconds = None
    if seconds is None or not 0 <= seconds <= 60:
        return None
    return seconds


def _json(response: httpx.Response, method: str, path: str) -> Any:
    try:
        return decode_json(response.content)
    except EventParseError:
        raise RunwayProtocolError(
            f"Runway answered {method} {path} with something that is not JSON "
            f"(status {response.status_code}, {len(response.content)} bytes)",
            status_code=response.status_code,
            hint="check RUNWAYML_BASE_URL points at Runway's API",
        ) from None


def _parse(model: type[ModelT], response: httpx.Response, method: str, path: str) -> ModelT:
    data = _json(response, method, path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise RunwayProtocolError(
            f"Runway's answer to {method} {path} is not a valid {model.__name__}: {problems}",
            status_code=response.status_code,
            hint="the API may have changed; please report it with the masquerade version",
        ) from None
