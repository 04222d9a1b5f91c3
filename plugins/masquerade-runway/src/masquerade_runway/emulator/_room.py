"""One session's room: participants over websockets, data messages and LiveKit-like RPC.

The scripted avatar in the room is :class:`~._worker.ScriptedWorker`; this module only
carries messages (protocol in :class:`masquerade_runway.EmulatorRoom`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from starlette.websockets import WebSocket, WebSocketDisconnect

from ._session import TERMINAL, BackendCall, EmulatedSession
from ._worker import ScriptedWorker

if TYPE_CHECKING:
    from ._core import Emulator

__all__ = ["Room", "Participant"]

# LiveKit RPC error codes (rtc.RpcError.ErrorCode).
UNSUPPORTED_METHOD = 1400
RESPONSE_TIMEOUT = 1502
RECIPIENT_DISCONNECTED = 1503


@dataclass
class Participant:
    identity: str
    kind: Literal["backend", "frontend"]
    ws: WebSocket
    methods: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    joined_at: float = field(default_factory=time.monotonic)



class Room:
    """One session's room: participants over websockets plus the scripted worker."""

    def __init__(self, emulator: Emulator, session: EmulatedSession) -> None:
        self.emulator = emulator
        self.session = session
        self.participants: dict[str, Participant] = {}
        self.pending: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self.closed = False
        self.data_received: list[tuple[str, Any]] = []
        self.worker = ScriptedWorker(self)

    # ------------------------------------------------------------ sending
    async def send(self, participant: Participant, message: dict[str, Any]) -> bool:
        try:
            async with participant.lock:
                await participant.ws.send_text(json.dumps(message))
        except Exception:  # the participant is gone; its receive loop cleans up
            return False
        return True

    async def broadcast(
        self,
        payload: bytes,
        *,
        sender: str | None,
        topic: str | None = None,
        to: list[str] | None = None,
    ) -> None:
        message = {
            "type": "data",
            "from": sender,
            "topic": topic,
            "data": base64.b64encode(payload).decode(),
        }
        for identity, participant in list(self.participants.items()):
            if identity == sender or (to and identity not in to):
                continue
            await self.send(participant, message)

    async def say_data(self, message: dict[str, Any] | str) -> None:
        payload = message if isinstance(message, str) else json.dumps(message)
        await self.broadcast(payload.encode(), sender=self.worker.identity)

    # ------------------------------------------------------------ participants
    async def serve(self, participant: Participant) -> None:
        """Run one participant's connection until it leaves or the room closes."""
        ws = participant.ws
        await ws.accept()
        if self.closed or self.session.status in TERMINAL:
            await ws.close(code=1000, reason="session ended")
            return
        others = [p.identity for p in self.participants.values()]
        self.participants[participant.identity] = participant
        await self.send(
            participant,
            {
                "type": "joined",
                "identity": participant.identity,
                "room": self.session.id,
                "participants": [self.worker.identity, *others],
            },
        )
        for other in list(self.participants.values()):
            if other is not participant:
                await self.send(
                    other, {"type": "participant_joined", "identity": participant.identity}
                )
        session = self.session
        if participant.kind == "frontend" or session.plan.frontend == "simulated":
            # A frontend joining makes the session RUNNING; with a simulated user, the
            # emulator plays the user, who joins when the backend arrives.
            self.emulator.start_running(session)
        self.worker.maybe_start()
        try:
            while True:
                raw = await ws.receive_text()
                await self._on_message(participant, raw)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.participants.pop(participant.identity, None)
            for request_id, (target, future) in list(self.pending.items()):
                if target == participant.identity and not future.done():
                    future.set_result(
                        {
                            "error": {
                                "code": RECIPIENT_DISCONNECTED,
                                "message": "Recipient disconnected",
                            }
                        }
                    )
                    self.pending.pop(request_id, None)
            for other in list(self.participants.values()):
                await self.send(
                    other, {"type": "participant_left", "identity": participant.identity}
                )

    async def _on_message(self, participant: Participant, raw: str) -> None:
        try:
            message = json.loads(raw)
            kind = message["type"]
        except (ValueError, TypeError, KeyError, RecursionError):
            await self.send(participant, {"type": "error", "message": "malformed message"})
            return
        if kind == "register_rpc":
            participant.methods.add(str(message.get("method")))
            self.worker.maybe_start()
        elif kind == "publish_data":
            try:
                payload = base64.b64decode(message.get("data") or "", validate=True)
            except (binascii.Error, ValueError):
                await self.send(participant, {"type": "error", "message": "invalid base64"})
                return
            try:
                decoded: Any = json.loads(payload)
            except (ValueError, RecursionError):
                decoded = payload.decode("utf-8", "replace")
            self.data_received.append((participant.identity, decoded))
            if isinstance(decoded, dict) and decoded.get("type") == "END_CALL":
                self.emulator.finish(self.session, "COMPLETED", by=participant.identity)
                return
            await self.broadcast(
                payload,
                sender=participant.identity,
                topic=message.get("topic"),
                to=list(message.get("destinationIdentities") or ()) or None,
            )
        elif kind == "rpc_response":
            request_id = str(message.get("requestId"))
            record = self.session.calls.get(request_id)
            if record is not None:
                record.answers += 1
            entry = self.pending.pop(request_id, None)
            if entry is not None and not entry[1].done():
                entry[1].set_result(message)

    # ------------------------------------------------------------ the worker
    async def call(
        self, method: str, payload: str, *, caller: str, timeout: float
    ) -> dict[str, Any]:
        """Call ``method`` on the participant that registered it, like LiveKit RPC; the
        call is recorded in ``session.calls`` with the answers it gets."""
        request_id = str(uuid.uuid4())
        record = self.session.calls[request_id] = BackendCall(request_id, method)
        reply = await self._call(request_id, method, payload, caller=caller, timeout=timeout)
        error = reply.get("error")
        if error:
            record.error = str(error.get("message"))
        return reply

    async def _call(
        self, request_id: str, method: str, payload: str, *, caller: str, timeout: float
    ) -> dict[str, Any]:
        target = next((p for p in self.participants.values() if method in p.methods), None)
        if target is None and not any(p.kind == "backend" for p in self.participants.values()):
            # No backend in the room: the call goes nowhere and times out, as with Runway.
            await asyncio.sleep(timeout)
            return {"error": {"code": RESPONSE_TIMEOUT, "message": "Response timeout"}}
        if target is None:
            return {
                "error": {
                    "code": UNSUPPORTED_METHOD,
                    "message": "Method not supported at destination",
                }
            }
        assert self.emulator.loop is not None
        future: asyncio.Future[dict[str, Any]] = self.emulator.loop.create_future()
        self.pending[request_id] = (target.identity, future)
        sent = await self.send(
            target,
            {
                "type": "rpc_request",
                "requestId": request_id,
                "method": method,
                "callerIdentity": caller,
                "payload": payload,
                "responseTimeout": timeout,
            },
        )
        if not sent:
            self.pending.pop(request_id, None)
            return {"error": {"code": RECIPIENT_DISCONNECTED, "message": "Recipient disconnected"}}
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return {"error": {"code": RESPONSE_TIMEOUT, "message": "Response timeout"}}
        finally:
            self.pending.pop(request_id, None)

    # ------------------------------------------------------------ closing
    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.worker.cancel()
        for participant in list(self.participants.values()):
            try:
                async with participant.lock:
                    await participant.ws.close(code=1000, reason="session ended")
            except Exception:
                pass
