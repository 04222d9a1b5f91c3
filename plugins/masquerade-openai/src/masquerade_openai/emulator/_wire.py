"""HTTP and websockets on one asyncio port, for the emulator.

The Realtime API serves its websocket (``GET /v1/realtime``, upgraded) and its REST calls
(``POST /v1/realtime/calls/...``) on the same origin, and clients derive one from the
other, so the emulator must too. websockets' servers refuse request bodies, so this module
reads each request head itself: a websocket upgrade is handed to websockets' sans-I/O
``ServerProtocol`` (the same framing, masking and close handshake rules as its servers);
anything else is answered as plain HTTP/1.1 (keep-alive, ``Content-Length`` bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from .._transport import WS_LOGGER

__all__ = ["HttpRequest", "HttpResponse", "WsConnection", "WireServer", "json_response"]

logger = logging.getLogger("masquerade_openai.emulator")

MAX_HEAD = 64 * 1024
MAX_BODY = 32 * 2**20


@dataclass
class HttpRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any = None) -> HttpResponse:
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    return HttpResponse(status, body, headers)


class WsConnection:
    """One accepted websocket: send text, iterate received text, close or drop it."""

    def __init__(
        self,
        protocol: ServerProtocol,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: Request,
    ) -> None:
        self.protocol = protocol
        self.reader = reader
        self.writer = writer
        self.request = request
        self.closed = False
        self.close_code: int | None = None
        self._closed_event = asyncio.Event()
        self.held: list[str] | None = None  # while not None, outgoing messages wait here

    def _write_pending(self) -> None:
        chunks = self.protocol.data_to_send()
        if len(chunks) > 1 and all(chunks):
            self.writer.write(b"".join(chunks))  # one syscall, not one per frame
            return
        for chunk in chunks:
            if chunk:
                self.writer.write(chunk)
            else:  # the protocol asks to close the TCP connection
                self._shutdown()

    def _shutdown(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        self._mark_closed()

    def _mark_closed(self) -> None:
        if not self.closed:
            self.closed = True
            self._closed_event.set()

    def send_text(self, text: str) -> None:
        """Queue one text message (no wait; call :meth:`drain` for flow control)."""
        if self.closed or self.writer.is_closing():
            return
        if self.held is not None:
            self.held.append(text)
            return
        self.protocol.send_text(text.encode())
        self._write_pending()

    def send_many(self, texts: list[str]) -> None:
        """Queue many messages and hand them to the transport in one write."""
        if self.closed or self.writer.is_closing():
            return
        if self.held is not None:
            self.held.extend(texts)
            return
        send = self.protocol.send_text
        for text in texts:
            send(text.encode())
        self._write_pending()

    def hold(self) -> None:
        """Keep outgoing messages back (to stage races deterministically in tests)."""
        if self.held is None:
            self.held = []

    def release(self) -> None:
        """Send the held messages, in order, and stop holding."""
        held, self.held = self.held or [], None
        for text in held:
            self.send_text(text)

    def send_json(self, event: Any) -> None:
        self.send_text(json.dumps(event))

    async def drain(self) -> None:
        if self.closed or self.writer.is_closing():
            return
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def close(self, code: int = 1000, reason: str = "", timeout: float = 2.0) -> None:
        """Start the closing handshake and wait (bounded) for the client's answer."""
        if self.start_close(code, reason, timeout):
            await self._closed_event.wait()

    def start_close(self, code: int = 1000, reason: str = "", timeout: float = 2.0) -> bool:
        """Send the close frame without waiting for the answer (the connection is cut after
        ``timeout`` if none comes). ``False`` when it was already closed."""
        if self.closed or self.writer.is_closing():
            self._mark_closed()
            return False
        self.close_code = code
        self.protocol.send_close(code, reason)
        self._write_pending()
        asyncio.get_running_loop().call_later(timeout, self._shutdown)
        return True

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (the client sees 1006)."""
        transport = self.writer.transport
        transport.abort()
        self._mark_closed()

    async def messages(self) -> AsyncIterator[str | bytes]:
        """Received messages until the connection closes."""
        parts: list[bytes] = []
        opcode: Opcode | None = None
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    self.protocol.receive_eof()
                    self._write_pending()
                    return
                self.protocol.receive_data(data)
                events = self.protocol.events_received()
                self._write_pending()  # pongs, close replies
                for frame in events:
                    if not isinstance(frame, Frame):
                        continue
                    if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                        opcode = frame.opcode
                        parts = [bytes(frame.data)]
                    elif frame.opcode == Opcode.CONT:
                        parts.append(bytes(frame.data))
                    else:
                        continue
                    if frame.fin:
                        payload = b"".join(parts)
                        parts = []
                        if opcode == Opcode.TEXT:
                            yield payload.decode("utf-8", "replace")
                        else:
                            yield payload
                if self.protocol.close_expected() or self.protocol.state.name == "CLOSED":
                    if self.protocol.close_rcvd is not None:
                        self.close_code = self.protocol.close_rcvd.code
                    self._shutdown()
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._mark_closed()


WsHandler = Callable[[WsConnection], Awaitable[None]]
# Decides on an upgrade before it is accepted: None to accept, else the HTTP response.
WsAuthorizer = Callable[[HttpRequest], HttpResponse | None]
HttpHandler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class WireServer:
    """An asyncio TCP server routing each connection to HTTP or websocket handlers."""

    def __init__(
        self,
        *,
        http: HttpHandler,
        authorize_ws: WsAuthorizer,
        websocket: WsHandler,
        max_size: int | None = 32 * 2**20,
    ) -> None:
        self._http = http
        self._authorize = authorize_ws
        self._websocket = websocket
        self._max_size = max_size
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._accept, host, port, limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # stop() cancels open connections; asyncio's stream callback would report a
            # cancelled handler task as an error, so it ends quietly instead.
            pass
        except Exception:
            logger.exception("the emulator failed on a connection")
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # HTTP keep-alive: one request after another
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            request = _parse_head(head)
            if request is None:
                _write_http(writer, json_response(400, _error("malformed HTTP request")))
                return
            if request.headers.get("upgrade", "").lower() == "websocket":
                await self._upgrade(head, request, reader, writer)
                return
            length = int(request.headers.get("content-length") or 0)
            if length > MAX_BODY:
                _write_http(writer, json_response(413, _error("request body too large")))
                return
            if length:
                request.body = await reader.readexactly(length)
            response = await self._http(request)
            _write_http(writer, response)
            await writer.drain()
            if request.headers.get("connection", "").lower() == "close":
                return

    async def _upgrade(
        self,
        head: bytes,
        request: HttpRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        protocol = ServerProtocol(max_size=self._max_size, logger=WS_LOGGER,
                                  select_subprotocol=_select_subprotocol)
        protocol.receive_data(head)
        events = protocol.events_received()
        if not events or not isinstance(events[0], Request):
            _write_http(writer, json_response(400, _error("malformed websocket handshake")))
            return
        ws_request = events[0]
        refusal = self._authorize(request)
        if refusal is not None:
            response = protocol.reject(refusal.status, refusal.body.decode() or "refused")
            for name, value in refusal.headers.items():
                response.headers[name] = value
            protocol.send_response(response)
            for chunk in protocol.data_to_send():
                writer.write(chunk)
            await writer.drain()
            return
        response = protocol.accept(ws_request)
        protocol.send_response(response)
        for chunk in protocol.data_to_send():
            writer.write(chunk)
        await writer.drain()
        if response.status_code != 101:
            return
        connection = WsConnection(protocol, reader, writer, ws_request)
        await self._websocket(connection)
        if not connection.closed:
            await connection.close(1000, "")


def _select_subprotocol(
    protocol: ServerProtocol, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    # Browsers offer "realtime" (plus "openai-insecure-api-key.<key>", which carries the
    # key and is never selected); anything else is accepted without a subprotocol.
    return Subprotocol("realtime") if "realtime" in offered else None


def _error(message: str, code: str | None = None, kind: str = "invalid_request_error") -> Any:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _parse_head(head: bytes) -> HttpRequest | None:
    try:
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    parts = urlsplit(target)
    return HttpRequest(method.upper(), parts.path, dict(parse_qsl(parts.query)), headers)


def _write_http(writer: asyncio.StreamWriter, response: HttpResponse) -> None:
    phrase = HTTPStatus(response.status).phrase
    head = [f"HTTP/1.1 {response.status} {phrase}", f"Content-Length: {len(response.body)}"]
    head.extend(f"{name}: {value}" for name, value in response.headers.items())
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
