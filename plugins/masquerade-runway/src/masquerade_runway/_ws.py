"""A minimal websocket client on anyio streams (asyncio and trio), using websockets' sans-I/O
protocol.

Unlike a context-manager client, connecting and closing are plain method calls that may
happen in different cancel scopes (the emulator room is opened by ``connect`` and closed
by the cancel path), and nothing runs in the background: messages are read by whoever
calls :meth:`WebSocket.recv`.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import Mapping, Sequence

import anyio
import anyio.abc
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["WebSocket", "WebSocketError"]


class WebSocketError(Exception):
    """The websocket could not be opened, or it closed. ``code`` is the close code."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class WebSocket:
    """One client websocket. Open it with :meth:`connect`."""

    def __init__(self, stream: anyio.abc.ByteStream, protocol: ClientProtocol) -> None:
        self._stream = stream
        self._protocol = protocol
        self._write_lock = anyio.Lock()
        self._messages: deque[str | bytes] = deque()
        self._fragments: list[bytes] = []
        self._fragment_text = False
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_size: int | None = 2**24,
        open_timeout: float = 10.0,
    ) -> WebSocket:
        """Open a websocket to ``url`` (``ws://`` or ``wss://``) with extra ``headers``."""
        uri = parse_uri(url)
        with anyio.fail_after(open_timeout):
            try:
                if uri.secure:
                    stream: anyio.abc.ByteStream = await anyio.connect_tcp(
                        uri.host,
                        uri.port,
                        ssl_context=ssl.create_default_context(),
                        tls_standard_compatible=False,
                    )
                else:
                    stream = await anyio.connect_tcp(uri.host, uri.port)
            except OSError as exc:
                raise WebSocketError(f"could not connect to {uri.host}:{uri.port}: {exc}") from None
            protocol = ClientProtocol(uri, max_size=max_size)
            ws = cls(stream, protocol)
            try:
                await ws._handshake(headers or {})
            except BaseException:
                await stream.aclose()
                raise
        return ws

    async def _handshake(self, headers: Mapping[str, str]) -> None:
        protocol = self._protocol
        request = protocol.connect()
        for name, value in headers.items():
            request.headers[name] = value
        protocol.send_request(request)
        await self._flush()
        while True:
            try:
                data = await self._stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                raise WebSocketError(
                    "the server closed the connection during the handshake"
                ) from None
            protocol.receive_data(data)
            events = protocol.events_received()
            if events:
                break
        response = events[0]
        if protocol.handshake_exc is not None or not isinstance(response, Response):
            status = getattr(response, "status_code", None)
            body = getattr(response, "body", b"") or b""
            detail = f": {body.decode(errors='replace')[:200]}" if body else ""
            raise WebSocketError(
                f"the websocket handshake was refused (HTTP {status}){detail}", code=status
            )
        self._handle(events[1:])

    @property
    def closed(self) -> bool:
        return self._closed

    async def _flush(self) -> None:
        async with self._write_lock:
            for chunk in self._protocol.data_to_send():
                if chunk:
                    await self._stream.send(chunk)
                elif isinstance(self._stream, anyio.abc.SocketStream):
                    try:
                        await self._stream.send_eof()
                    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                        pass

    def _handle(self, events: Sequence[object]) -> None:
        for event in events:
            if not isinstance(event, Frame):
                continue
            if event.opcode in (Opcode.TEXT, Opcode.BINARY):
                self._fragment_text = event.opcode is Opcode.TEXT
                self._fragments = [bytes(event.data)]
            elif event.opcode is Opcode.CONT:
                self._fragments.append(bytes(event.data))
            else:
                continue
            if event.fin:
                data = b"".join(self._fragments)
                self._fragments = []
                self._messages.append(data.decode() if self._fragment_text else data)

    async def send(self, message: str | bytes) -> None:
        """Send one message (text for ``str``, binary for ``bytes``)."""
        if self._closed or self._protocol.state is not State.OPEN:
            raise WebSocketError("the websocket is closed", code=self._protocol.close_code)
        async with self._write_lock:
            if isinstance(message, str):
                self._protocol.send_text(message.encode())
            else:
                self._protocol.send_binary(message)
            try:
                for chunk in self._protocol.data_to_send():
                    if chunk:
                        await self._stream.send(chunk)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise WebSocketError(f"the websocket broke while sending: {exc!r}") from None

    async def recv(self) -> str | bytes:
        """The next message; raises :class:`WebSocketError` once the websocket is closed."""
        while not self._messages:
            if self._closed:
                raise self._closed_error()
            if self._protocol.close_rcvd is not None or self._protocol.state is State.CLOSED:
                # The close frame may have come with earlier data (even the handshake).
                try:
                    await self._flush()
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass
                await self._close_stream()
                continue
            try:
                data = await self._stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._protocol.receive_eof()
                await self._close_stream()
            else:
                self._protocol.receive_data(data)
            self._handle(self._protocol.events_received())
            try:
                await self._flush()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await self._close_stream()
        return self._messages.popleft()

    def _closed_error(self) -> WebSocketError:
        code = self._protocol.close_code
        reason = self._protocol.close_reason or ""
        return WebSocketError(
            f"the websocket closed (code {code}{', ' + reason if reason else ''})",
            code=code,
            reason=reason,
        )

    async def _close_stream(self) -> None:
        if not self._closed:
            self._closed = True
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and close the connection (does not wait for the echo)."""
        if self._closed:
            return
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(code, reason)
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                try:
                    await self._flush()
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass
        await self._close_stream()
