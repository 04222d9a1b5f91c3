"""The client of masquerade's emulator room (:class:`EmulatorRoom`), one implementation of
the :class:`~masquerade_runway.Room` seam; :class:`~masquerade_runway.LiveKitRoom` is the
other."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import anyio.abc

from masquerade import register_session_secret

from ._room import (
    APPLICATION_ERROR,
    UNSUPPORTED_METHOD,
    DataCallback,
    DataMessage,
    RoomError,
    RpcFailure,
    RpcHandler,
    RpcInvocation,
)
from ._ws import WebSocket, WebSocketError

__all__ = ["EmulatorRoom"]

logger = logging.getLogger("masquerade.runway.room")


class EmulatorRoom:
    """The client of masquerade's emulator room: a websocket carrying JSON messages.

    Wire protocol (text frames, one JSON object each; the server is
    :mod:`masquerade_runway.emulator`):

    ==================================================  ===================================
    client -> room                                      meaning
    ==================================================  ===================================
    ``{"type":"register_rpc","method":m}``              answer calls of ``m``
    ``{"type":"publish_data","data":b64,"topic":t,``    a reliable data message
    ``"destinationIdentities":[...]}``
    ``{"type":"rpc_response","requestId":r,``          the reply to an RPC call (or
    ``"payload":p}``                                    ``"error":{code,message,data}``)
    ==================================================  ===================================

    ==================================================  ===================================
    room -> client                                      meaning
    ==================================================  ===================================
    ``{"type":"joined","identity":i,"room":n,``         sent once after the handshake
    ``"participants":[...]}``
    ``{"type":"data","from":i,"topic":t,"data":b64}``   a data message
    ``{"type":"rpc_request","requestId":r,"method":m,`` an RPC call to answer within
    ``"callerIdentity":i,"payload":p,``                 ``responseTimeout`` seconds
    ``"responseTimeout":s}``
    ``{"type":"participant_joined"/"participant_left",``
    ``"identity":i}``
    ==================================================  ===================================

    The token goes in the ``Authorization: Bearer`` header of the handshake. The room
    closes the websocket (code 1000) when the session ends.

    Messages are read by :meth:`wait_closed`, which also runs the RPC handlers (each in
    its own task, so a slow tool never delays data messages or other calls). After each
    message it awaits :attr:`pause` when one is set (the session's backpressure), so a
    stalled subscriber slows the reader instead of growing memory.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, RpcHandler] = {}
        self._callbacks: list[DataCallback] = []
        self._ws: WebSocket | None = None
        self.identity: str | None = None
        self.room_name: str | None = None
        self.participants: set[str] = set()
        self._closed = anyio.Event()
        self.pause: Callable[[], Awaitable[None]] | None = None

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed and not self._closed.is_set()

    def register_rpc_method(self, method: str, handler: RpcHandler) -> None:
        if self._ws is not None:
            raise RoomError("register RPC methods before connecting to the emulator room")
        self._handlers[method] = handler

    def on_data(self, callback: DataCallback) -> None:
        self._callbacks.append(callback)

    async def connect(self, url: str, token: str) -> None:
        register_session_secret(token)
        try:
            ws = await WebSocket.connect(url, headers={"Authorization": f"Bearer {token}"})
        except (WebSocketError, TimeoutError) as exc:
            raise RoomError(f"could not join the emulator room at {url}: {exc}") from None
        try:
            with anyio.fail_after(10):
                joined = json.loads(await ws.recv())
            if not isinstance(joined, dict) or joined.get("type") != "joined":
                raise RoomError(f"the emulator room greeted with {joined!r} instead of 'joined'")
            self.identity = str(joined.get("identity"))
            self.room_name = str(joined.get("room"))
            self.participants = set(joined.get("participants") or ())
            for method in self._handlers:
                await ws.send(json.dumps({"type": "register_rpc", "method": method}))
        except (WebSocketError, TimeoutError, ValueError) as exc:
            await ws.close()
            raise RoomError(f"joining the emulator room failed: {exc}") from None
        except BaseException:
            await ws.close()
            raise
        self._ws = ws

    async def publish_data(
        self,
        payload: bytes,
        *,
        topic: str | None = None,
        destination_identities: Sequence[str] = (),
    ) -> None:
        ws = self._ws
        if ws is None or not self.connected:
            raise RoomError("the emulator room is not connected")
        message: dict[str, Any] = {
            "type": "publish_data",
            "data": base64.b64encode(payload).decode(),
            "topic": topic,
            "destinationIdentities": list(destination_identities),
        }
        try:
            await ws.send(json.dumps(message))
        except WebSocketError as exc:
            raise RoomError(f"publishing to the emulator room failed: {exc}") from None

    async def wait_closed(self) -> None:
        ws = self._ws
        if ws is None:
            return
        # Cancelling this only stops reading: the room stays joined until disconnect().
        async with anyio.create_task_group() as tg:
            while True:
                try:
                    raw = await ws.recv()
                except WebSocketError:
                    break
                self._dispatch(raw, tg)
                if self.pause is not None:
                    await self.pause()
            self._closed.set()
            tg.cancel_scope.cancel()

    def _dispatch(self, raw: str | bytes, tg: anyio.abc.TaskGroup) -> None:
        try:
            message = json.loads(raw)
            kind = message["type"]
        except (ValueError, TypeError, KeyError):
            logger.warning("ignored a malformed message from the emulator room")
            return
        if kind == "data":
            try:
                payload = base64.b64decode(message.get("data") or "", validate=True)
            except (binascii.Error, ValueError):
                logger.warning("ignored a data message with invalid base64")
                return
            data = DataMessage(payload, message.get("from"), message.get("topic"))
            for callback in self._callbacks:
                callback(data)
        elif kind == "rpc_request":
            tg.start_soon(self._answer, message)
        elif kind == "participant_joined":
            self.participants.add(str(message.get("identity")))
        elif kind == "participant_left":
            self.participants.discard(str(message.get("identity")))

    async def _answer(self, message: dict[str, Any]) -> None:
        request_id = str(message.get("requestId"))
        method = str(message.get("method"))
        handler = self._handlers.get(method)
        reply: dict[str, Any] = {"type": "rpc_response", "requestId": request_id}
        if handler is None:
            reply["error"] = {
                "code": UNSUPPORTED_METHOD,
                "message": "Method not supported at destination",
            }
        else:
            invocation = RpcInvocation(
                request_id=request_id,
                caller_identity=str(message.get("callerIdentity")),
                payload=str(message.get("payload") or ""),
                response_timeout=float(message.get("responseTimeout") or 10.0),
                method=method,
            )
            try:
                reply["payload"] = await handler(invocation)
            except RpcFailure as failure:
                reply["error"] = {
                    "code": failure.code,
                    "message": failure.message,
                    "data": failure.data,
                }
            except Exception:
                # Like LiveKit: any other exception is an application error for the caller.
                logger.exception("RPC handler for %s raised", method)
                reply["error"] = {
                    "code": APPLICATION_ERROR,
                    "message": "Application error in method handler",
                }
        ws = self._ws
        if ws is None:
            return
        try:
            await ws.send(json.dumps(reply))
        except WebSocketError:
            logger.info("could not answer RPC %s: the emulator room is closed", request_id)

    async def disconnect(self) -> None:
        ws = self._ws
        if ws is not None:
            await ws.close()
        self._closed.set()
