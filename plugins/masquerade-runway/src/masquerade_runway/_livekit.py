"""The LiveKit room: how the backend joins a real Runway session (``livekit.rtc``).

The LiveKit RTC SDK runs on asyncio only; joining from trio is a clear
:class:`~masquerade.ConfigurationError`. The handler adapter (:meth:`LiveKitRoom.rpc_handler`)
is plain async code and turns :class:`~masquerade_runway.RpcFailure` into LiveKit's own
``rtc.RpcError``, so the worker receives the code and message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import anyio
from livekit import rtc

from masquerade import ConfigurationError, register_session_secret

from ._room import DataCallback, DataMessage, RoomError, RpcFailure, RpcHandler, RpcInvocation

__all__ = ["LiveKitRoom"]

logger = logging.getLogger("masquerade.runway.room")

LiveKitHandler = Callable[[rtc.RpcInvocationData], Awaitable[str]]


class LiveKitRoom:
    """A LiveKit room joined with ``livekit.rtc`` (implements :class:`~masquerade_runway.Room`)."""

    def __init__(self) -> None:
        self._handlers: dict[str, RpcHandler] = {}
        self._callbacks: list[DataCallback] = []
        self._room: rtc.Room | None = None
        self._closed = anyio.Event()
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected and not self._closed.is_set()

    @staticmethod
    def rpc_handler(method: str, handler: RpcHandler) -> LiveKitHandler:
        """Adapt ``handler`` to ``LocalParticipant.register_rpc_method``: LiveKit's
        ``RpcInvocationData`` in, the reply or an ``rtc.RpcError`` out."""

        async def handle(data: rtc.RpcInvocationData) -> str:
            invocation = RpcInvocation(
                request_id=data.request_id,
                caller_identity=data.caller_identity,
                payload=data.payload,
                response_timeout=data.response_timeout,
                method=getattr(data, "method", "") or method,
            )
            try:
                return await handler(invocation)
            except RpcFailure as failure:
                raise rtc.RpcError(failure.code, failure.message, failure.data) from None

        return handle

    def register_rpc_method(self, method: str, handler: RpcHandler) -> None:
        self._handlers[method] = handler
        if self._room is not None and self._connected:
            self._room.local_participant.register_rpc_method(
                method, self.rpc_handler(method, handler)
            )

    def on_data(self, callback: DataCallback) -> None:
        self._callbacks.append(callback)

    def _on_data(self, packet: rtc.DataPacket) -> None:
        sender = packet.participant.identity if packet.participant is not None else None
        message = DataMessage(bytes(packet.data), sender, packet.topic or None)
        for callback in self._callbacks:
            try:
                callback(message)
            except Exception:
                logger.exception("a data-message callback raised")

    def _on_disconnected(self, reason: object = None) -> None:
        logger.info("left the LiveKit room (%s)", reason)
        self._closed.set()

    async def connect(self, url: str, token: str) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigurationError(
                "the LiveKit room needs asyncio (the livekit RTC SDK runs on asyncio only)",
                hint="run the session under asyncio, or use the emulator's room "
                "(options={'room': 'emulator'}) with the emulator",
            ) from None
        register_session_secret(token)
        room = rtc.Room()
        room.on("data_received", self._on_data)
        room.on("disconnected", self._on_disconnected)
        try:
            await room.connect(url, token)
        except Exception as exc:
            raise RoomError(f"could not join the LiveKit room at {url}: {exc}") from None
        self._room = room
        self._connected = True
        for method, handler in self._handlers.items():
            room.local_participant.register_rpc_method(method, self.rpc_handler(method, handler))

    async def publish_data(
        self,
        payload: bytes,
        *,
        topic: str | None = None,
        destination_identities: Sequence[str] = (),
    ) -> None:
        if self._room is None or not self.connected:
            raise RoomError("the LiveKit room is not connected")
        try:
            await self._room.local_participant.publish_data(
                payload,
                reliable=True,
                destination_identities=list(destination_identities),
                topic=topic or "",
            )
        except Exception as exc:
            raise RoomError(f"publishing to the LiveKit room failed: {exc}") from None

    async def wait_closed(self) -> None:
        if self._room is None:
            return
        await self._closed.wait()

    async def disconnect(self) -> None:
        room, self._room = self._room, None
        if room is not None:
            try:
                await room.disconnect()
            except Exception as exc:
                logger.info("leaving the LiveKit room failed: %s", exc)
        self._closed.set()
