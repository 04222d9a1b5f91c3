"""The room seam: how the backend joins a Runway session's room.

A real Runway session's room is a LiveKit room (:class:`~masquerade_runway.LiveKitRoom`,
the default). masquerade's emulator has its own websocket room with the same RPC and
data-message semantics (:class:`~masquerade_runway.EmulatorRoom`). Both implement
:class:`Room`, a deliberately small interface::

    room.register_rpc_method("lookup_order", handler)   # before connect
    room.on_data(callback)                              # every data message
    await room.connect(url, token)
    await room.publish_data(b'{"type":"END_CALL"}')
    await room.wait_closed()                            # until the room is gone
    await room.disconnect()

Which one a session uses is chosen explicitly, never guessed from a URL: the request's
``options={"room": "livekit" | "emulator"}``, else ``RunwayProvider(room=...)``, else
what ``connect_backend`` advertised (the emulator answers ``"roomTransport": "emulator"``;
Runway sends no such field), else LiveKit.

RPC handlers receive an :class:`RpcInvocation` (the fields of LiveKit's
``rtc.RpcInvocationData``) and return the reply payload, or raise :class:`RpcFailure`
(sent to the caller as LiveKit's ``RpcError`` with the same code and message).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "Room",
    "RoomError",
    "RpcInvocation",
    "RpcFailure",
    "RpcHandler",
    "DataMessage",
    "DataCallback",
    "APPLICATION_ERROR",
    "UNSUPPORTED_METHOD",
]

#: LiveKit's RPC error codes used here (``rtc.RpcError.ErrorCode``).
APPLICATION_ERROR = 1500
UNSUPPORTED_METHOD = 1400


@dataclass(frozen=True)
class RpcInvocation:
    """One incoming RPC call (the fields of LiveKit's ``rtc.RpcInvocationData``).

    ``response_timeout`` is how many seconds the caller waits for the reply.
    """

    request_id: str
    caller_identity: str
    payload: str
    response_timeout: float
    method: str = ""


class RpcFailure(Exception):
    """Raise it in an RPC handler to answer the caller with an error.

    ``code`` 1500 is LiveKit's "application error", the code a failed tool answers with.
    """

    def __init__(self, message: str, *, code: int = APPLICATION_ERROR, data: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data


@dataclass(frozen=True)
class DataMessage:
    """One data message received in the room. ``sender`` is the participant's identity
    (``None`` when the server sent it)."""

    payload: bytes
    sender: str | None = None
    topic: str | None = None


class RoomError(Exception):
    """The room could not be joined, or publishing to it failed."""


RpcHandler = Callable[[RpcInvocation], Awaitable[str]]
DataCallback = Callable[[DataMessage], None]


@runtime_checkable
class Room(Protocol):
    """A session room as the backend sees it (see the module docs)."""

    @property
    def connected(self) -> bool:
        """Whether the room is joined and not yet closed."""
        ...

    def register_rpc_method(self, method: str, handler: RpcHandler) -> None:
        """Answer RPC calls of ``method`` with ``handler``. Call it before :meth:`connect`."""
        ...

    def on_data(self, callback: DataCallback) -> None:
        """Call ``callback`` (synchronously) with every data message received."""
        ...

    async def connect(self, url: str, token: str) -> None:
        """Join the room; raise :class:`RoomError` when that fails."""
        ...

    async def publish_data(
        self,
        payload: bytes,
        *,
        topic: str | None = None,
        destination_identities: Sequence[str] = (),
    ) -> None:
        """Send a reliable data message (to everyone, or to the given identities)."""
        ...

    async def wait_closed(self) -> None:
        """Return when the room is gone (the call ended, or we were disconnected)."""
        ...

    async def disconnect(self) -> None:
        """Leave the room (safe to call twice, or when never connected)."""
        ...
