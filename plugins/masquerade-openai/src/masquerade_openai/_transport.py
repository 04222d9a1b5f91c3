"""Websocket connections on whichever event loop anyio runs: asyncio or trio.

websockets ships two native implementations, ``websockets.asyncio.client`` and
``websockets.trio.client`` (websockets >= 17). :func:`open_websocket` picks the one that
matches the running backend and returns a connection with the same small surface either
way: ``recv()``, ``send(text)``, ``close(code, reason)``, ``close_code``, ``close_reason``.

Every connection logs through :data:`WS_LOGGER`, whose filter redacts each record after
formatting it: websockets logs the handshake headers (``Authorization: Bearer ...``) at
DEBUG, and no key may ever reach a log line.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping
from typing import Any, Protocol

import sniffio
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from masquerade import ProviderError, redact

from ._shared import EPHEMERAL_KEY_HINT

__all__ = [
    "WebSocket",
    "WS_LOGGER",
    "RECOVERABLE_CLOSE_CODES",
    "open_websocket",
    "close_code_of",
    "ConnectionClosed",
]

#: Close codes after which reconnecting can help (the same set the official SDK retries):
#: going away, no status, abnormal closure, internal error, service restart, try again
#: later, TLS handshake failure.
RECOVERABLE_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1015})


class _RedactingFilter(logging.Filter):
    """Formats each record once, redacts secrets from the text, and drops the args."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string must not break the connection
            text = str(record.msg)
        record.msg = redact(text)
        record.args = None
        return True


#: The logger every masquerade-openai websocket uses (client and emulator). Its filter
#: redacts secrets, so turning on DEBUG logging for it is safe.
WS_LOGGER = logging.getLogger("masquerade_openai.websockets")
WS_LOGGER.addFilter(_RedactingFilter())


class WebSocket(Protocol):
    """What the provider needs from a websocket connection (both backends provide it)."""

    async def recv(self) -> str | bytes: ...
    async def send(self, message: str) -> None: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    @property
    def close_code(self) -> int | None: ...

    @property
    def close_reason(self) -> str | None: ...


def close_code_of(exc: ConnectionClosed) -> tuple[int, str]:
    """The close code and reason the peer sent, or 1006 when the socket just dropped."""
    if exc.rcvd is not None:
        return exc.rcvd.code, exc.rcvd.reason
    return 1006, ""


def _backend() -> str:
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:  # pragma: no cover - always inside anyio
        return "asyncio"


async def open_websocket(
    url: str,
    *,
    headers: Mapping[str, str],
    open_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    max_size: int | None = 16 * 2**20,
    compression: str | None = None,
    user_agent: str | None = None,
    provider: str = "openai",
) -> WebSocket:
    """Open a websocket on the running backend, or raise a clear ProviderError.

    A refused or timed-out connection is ``retryable``; a handshake answered with an HTTP
    error (401 for a bad key) carries its status code and is not retryable (except 429 and
    5xx).
    """
    kwargs: dict[str, Any] = {
        "additional_headers": dict(headers),
        "open_timeout": open_timeout,
        "ping_interval": ping_interval,
        "ping_timeout": ping_timeout,
        "max_size": max_size,
        "compression": compression,
        "logger": WS_LOGGER,
    }
    if user_agent is not None:
        kwargs["user_agent_header"] = user_agent
    proxy = proxy_for(url)
    if proxy is not True:
        kwargs["proxy"] = proxy
    try:
        if _backend() == "trio":
            return await _open_trio(url, kwargs)
        from websockets.asyncio.client import connect

        connection = await connect(url, **kwargs)
        _forget_handshake(connection)
        return connection
    except InvalidStatus as exc:
        where = where_of(url)  # (on failure only: redact costs)
        ephemeral = any(
            str(value).startswith("Bearer ek_")
            for name, value in headers.items()
            if name.lower() == "authorization"
        )
        raise _status_error(exc, where, provider, ephemeral=ephemeral) from None
    except InvalidHandshake as exc:
        where = where_of(url)  # (on failure only: redact costs)
        raise ProviderError(
            f"the websocket handshake with {where} failed: {exc}",
            provider=provider,
            retryable=True,
        ) from None
    except TimeoutError:
        where = where_of(url)  # (on failure only: redact costs)
        raise ProviderError(
            f"opening the websocket to {where} timed out after {open_timeout:g}s",
            provider=provider,
            retryable=True,
            hint="check the network and the base URL; masquerade retries where it is safe",
        ) from None
    except OSError as exc:
        where = where_of(url)  # (on failure only: redact costs)
        raise ProviderError(
            f"could not connect to {where}: {exc.strerror or exc}",
            provider=provider,
            retryable=True,
            hint="check the base URL and that the server (or the emulator) is running",
        ) from None


#: The environment variables a websocket's proxy can come from (urllib reads them in
#: either case; ``REQUEST_METHOD`` makes it ignore ``HTTP_PROXY``).
_PROXY_VARS = (
    *(
        name
        for scheme in ("ws", "wss", "socks", "https", "http", "all", "no")
        for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY")
    ),
    "REQUEST_METHOD",
)
_proxies: dict[tuple[str, tuple[Any, ...]], str | None] = {}
# The same names as the process environment's own keys (bytes on POSIX), read from its
# underlying dict in one C-level pass: ``os.environ.get`` encodes and decodes each name.
_ENVIRON_DATA: Any = getattr(os.environ, "_data", None)
_PROXY_KEYS = tuple(os.environ.encodekey(name) for name in _PROXY_VARS) if hasattr(
    os.environ, "encodekey") else ()


def _proxy_settings() -> tuple[Any, ...]:
    """The values of the proxy variables, to tell whether they changed."""
    data = _ENVIRON_DATA
    if type(data) is dict and _PROXY_KEYS:
        return tuple(map(data.get, _PROXY_KEYS))
    environ = os.environ
    return tuple(environ.get(name) for name in _PROXY_VARS)


def proxy_for(url: str) -> str | bool | None:
    """The proxy websockets would pick for ``url`` (``None``: a direct connection),
    remembered per URL while the proxy variables stay the same.

    websockets finds it by scanning the whole environment on every connection, which
    costs more than the rest of opening a loopback socket; here that scan runs once per
    URL and proxy setting. ``True`` (let websockets look) where proxies may come from
    the system's settings rather than the environment (not on Linux).
    """
    if not sys.platform.startswith("linux"):
        return True
    key = (url.split("?", 1)[0], _proxy_settings())
    try:
        return _proxies[key]
    except KeyError:
        pass
    from websockets.proxy import get_proxy
    from websockets.uri import parse_uri

    try:
        found = get_proxy(parse_uri(url))
    except Exception:  # an invalid URL: let connect() report it
        return True
    if len(_proxies) >= 64:  # a handful of URLs in practice: no unbounded growth
        _proxies.clear()
    _proxies[key] = found
    return found


def _status_error(
    exc: InvalidStatus, where: str, provider: str, *, ephemeral: bool = False
) -> ProviderError:
    status = exc.response.status_code
    code: str | None = None
    detail = ""
    try:
        import json

        body = json.loads(exc.response.body or b"{}")
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code") or error.get("type")
            detail = str(error.get("message") or "")
    except ValueError:
        detail = (exc.response.body or b"")[:200].decode("utf-8", "replace")
    retry_after: float | None = None
    raw_retry = exc.response.headers.get("retry-after")
    if raw_retry:
        try:
            retry_after = float(raw_retry)
            if not math.isfinite(retry_after) or retry_after < 0:
                retry_after = None
        except ValueError:
            retry_after = None
    if status == 401:
        hint = (
            f"the ephemeral key was rejected: {EPHEMERAL_KEY_HINT}"
            if ephemeral
            else "the API key was rejected: check OPENAI_API_KEY (or the api_key you passed) "
            "and the base URL"
        )
        code = code or "invalid_api_key"
    elif status == 403:
        hint = "the key has no access to the Realtime API or to this model"
    elif status == 404:
        hint = "check the model name, the call_id and the base URL"
    else:
        hint = None
    message = f"the websocket handshake with {where} was refused with HTTP {status}"
    if detail:
        message += f": {detail}"
    return ProviderError(
        message,
        provider=provider,
        status_code=status,
        code=code,
        retryable=status == 429 or status >= 500,
        retry_after=retry_after,
        hint=hint,
    )


async def _open_trio(url: str, kwargs: dict[str, Any]) -> WebSocket:
    """Open a websockets.trio connection whose background tasks outlive this call.

    A trio websocket runs its reader and keepalive in a nursery that must live as long as
    the connection. The session opens the socket in ``create()`` and reads it in
    ``connect()``, so no caller's nursery spans the connection's life. The connection's
    nursery therefore lives in a trio *system task*: it ends by itself once the
    connection is closed, and trio cancels it when the run ends.
    """
    import trio
    from websockets.trio.client import connect

    connector = connect(url, **kwargs)
    outcome: list[Any] = []
    done = trio.Event()
    abandoned = False

    async def hold() -> None:
        try:
            async with trio.open_nursery() as nursery:
                try:
                    connection = await connector.connect(nursery)
                except Exception as exc:
                    outcome.append(exc)
                    done.set()
                    return
                if abandoned:  # the caller was cancelled while we connected
                    await connection.aclose()
                    return
                outcome.append(connection)
                done.set()
                # The nursery now holds the connection's reader and keepalive until the
                # connection closes.
        except Exception:  # a system task must never raise: it would crash the run
            WS_LOGGER.exception("websocket background tasks failed")

    trio.lowlevel.spawn_system_task(hold, name=f"masquerade_openai websocket {where_of(url)}")
    try:
        await done.wait()
    except BaseException:
        abandoned = True
        if outcome and not isinstance(outcome[0], Exception):
            with trio.CancelScope(shield=True):
                await outcome[0].aclose()
        raise
    result = outcome[0]
    if isinstance(result, Exception):
        raise result
    return _TrioSocket(result)


class _TrioSocket:
    """websockets.trio names its closing method ``aclose``; give it the common surface.

    ``recv`` and ``send`` are the connection's own bound methods (no extra call layer).
    """

    def __init__(self, connection: Any) -> None:
        _forget_handshake(connection)
        self._connection = connection
        self.recv = connection.recv
        self.send = connection.send

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._connection.aclose(code, reason)

    @property
    def close_code(self) -> int | None:
        return self._connection.close_code  # type: ignore[no-any-return]

    @property
    def close_reason(self) -> str | None:
        return self._connection.close_reason  # type: ignore[no-any-return]


def _forget_handshake(connection: Any) -> None:
    """Drop the handshake's request and response, which websockets keeps for the
    connection's life: two header maps (about 3 KiB per idle session), one of them with
    the ``Authorization`` header. Nothing reads them once the connection is open. The
    maps are emptied in place (the parser still holds the response), and the response
    stays: a connection without one would take the next frame for it."""
    for message in (connection.request, connection.response):
        if message is not None:
            message.headers.clear()
    connection.request = None


def where_of(url: str) -> str:
    """The URL without its query, as error messages show it."""
    return redact(url.split("?", 1)[0])
