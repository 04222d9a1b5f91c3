"""The emulator's state: sessions, their rooms, the scripted avatar worker, faults.

Everything here runs on the emulator's own asyncio loop (see ``_server``); the few methods
tests call from other threads (faults, plans, snapshots) take ``Emulator.lock``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.websockets import WebSocket, WebSocketDisconnect

from ._script import (
    DEFAULT_SCRIPT,
    CallTool,
    Fail,
    Hangup,
    Say,
    SendClientEvent,
    SendData,
    SessionPlan,
    Step,
    Wait,
)

__all__ = ["Emulator", "EmulatedSession", "Fault", "RecordedRequest"]

logger = logging.getLogger("masquerade.runway.emulator")

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
DEFAULT_RPC_TIMEOUT = 4.0
# LiveKit RPC error codes (rtc.RpcError.ErrorCode).
UNSUPPORTED_METHOD = 1400
RESPONSE_TIMEOUT = 1502
RECIPIENT_DISCONNECTED = 1503


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


@dataclass
class Fault:
    """A fault the emulator injects into the next matching HTTP requests.

    Attributes:
        status: answer with this HTTP status (``None``: answer normally, after ``delay``).
        error: the ``{"error": ...}`` message.
        retry_after: seconds, sent as ``retry-after-ms`` and ``retry-after``.
        delay: seconds to wait before answering (a slow server).
        method: only requests with this method (``"POST"``...), or any.
        path: only requests whose path matches this regular expression, or any.
        times: how many requests it applies to.
    """

    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    method: str | None = None
    path: str | None = None
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclass
class RecordedRequest:
    """One HTTP request the emulator received, with the status it answered (0 until the
    answer starts, or when the client went away first)."""

    method: str
    path: str
    status: int
    at: float


@dataclass
class Participant:
    identity: str
    kind: Literal["backend", "frontend"]
    ws: WebSocket
    methods: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    joined_at: float = field(default_factory=time.monotonic)


@dataclass
class EmulatedSession:
    """One realtime session and its conversation."""

    id: str
    body: dict[str, Any]
    plan: SessionPlan
    script: list[Step]
    created: float  # monotonic
    created_wall: float
    status: str = "NOT_READY"
    queued: bool = False
    session_key: str | None = None
    expires_at: str | None = None
    ready_at: float | None = None
    running_at: float | None = None
    ended_at: float | None = None
    duration: int | None = None
    failure: str | None = None
    failure_code: str | None = None
    consumed: bool = False
    ended_by: str | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    finalize_at: float | None = None
    room: Room | None = None
    polls: int = 0

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.body.get("tools") or ())

    def tool_timeout(self, name: str) -> float:
        for tool in self.tools:
            if tool.get("name") == name and tool.get("type") == "backend_rpc":
                return float(tool.get("timeoutSeconds") or DEFAULT_RPC_TIMEOUT)
        return DEFAULT_RPC_TIMEOUT

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "createdAt": _iso(self.created_wall),
            "status": self.status,
        }
        if self.status == "NOT_READY":
            out["queued"] = self.queued
        elif self.status == "READY":
            if not self.plan.ready_without_key:
                out["sessionKey"] = self.session_key
            out["expiresAt"] = self.expires_at
        elif self.status == "COMPLETED":
            out["duration"] = self.duration or 0
        elif self.status == "FAILED":
            out["failure"] = self.failure
            out["failureCode"] = self.failure_code
        return out

    def avatar_wire(self) -> dict[str, Any]:
        avatar = dict(self.body["avatar"])
        if avatar.get("type") == "custom":
            return {"type": "custom", "id": avatar.get("avatarId")}
        return avatar

    def conversation_status(self, now: float) -> str:
        if self.status not in TERMINAL or (self.finalize_at is not None and now < self.finalize_at):
            return "in_progress"
        return "failed" if self.status == "FAILED" else "ended"


class Emulator:
    """State and behaviour of one emulator instance (see :class:`RunwayEmulator`)."""

    def __init__(
        self,
        *,
        api_key: str,
        script: list[Step] | None,
        plan: SessionPlan,
        public_url: str = "",
    ) -> None:
        self.api_key = api_key
        self.script = script if script is not None else list(DEFAULT_SCRIPT)
        self.plan = plan
        self.public_url = public_url
        self.lock = threading.RLock()
        self.sessions: dict[str, EmulatedSession] = {}
        self.avatars: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.plans: deque[SessionPlan] = deque()
        self.requests: list[RecordedRequest] = []
        self.tokens: dict[str, tuple[str, str, Literal["backend", "frontend"]]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ thread-safe API
    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record(self, method: str, path: str) -> RecordedRequest:
        entry = RecordedRequest(method, path, 0, time.monotonic())
        with self.lock:
            self.requests.append(entry)
        return entry

    def next_plan(self) -> SessionPlan:
        with self.lock:
            return self.plans.popleft() if self.plans else self.plan

    # ------------------------------------------------------------ sessions
    def create_session(self, body: dict[str, Any]) -> EmulatedSession:
        plan = self.next_plan()
        script = list(plan.script) if plan.script is not None else list(self.script)
        session = EmulatedSession(
            id=str(uuid.uuid4()),
            body=body,
            plan=plan,
            script=script,
            created=time.monotonic(),
            created_wall=time.time(),
        )
        with self.lock:
            self.sessions[session.id] = session
        self.refresh(session)
        return session

    def refresh(self, session: EmulatedSession) -> EmulatedSession:
        """Move the session along its timeline (NOT_READY -> READY -> ... ) as of now."""
        with self.lock:
            if session.status in TERMINAL or session.running_at is not None:
                return session
            plan = session.plan
            elapsed = time.monotonic() - session.created
            provisioned = plan.queued + plan.provisioning
            if elapsed < plan.queued:
                session.status, session.queued = "NOT_READY", True
                return session
            if elapsed < provisioned:
                session.status, session.queued = "NOT_READY", False
                return session
            if plan.fail_code is not None and plan.fail_at == "provisioning":
                self.finish(session, "FAILED", failure=plan.failure, code=plan.fail_code)
                return session
            if session.ready_at is None:
                session.ready_at = session.created + provisioned
                session.session_key = "rsk_" + secrets.token_hex(24)
                session.expires_at = _iso(time.time() + 300)
            if (
                plan.fail_code is not None
                and plan.fail_at == "ready"
                and time.monotonic() >= session.ready_at + plan.fail_after
            ):
                self.finish(session, "FAILED", failure=plan.failure, code=plan.fail_code)
                return session
            session.status, session.queued = "READY", False
            return session

    def finish(
        self,
        session: EmulatedSession,
        status: str,
        *,
        failure: str | None = None,
        code: str | None = None,
        by: str | None = None,
    ) -> None:
        """End the session with ``status`` (once) and close its room."""
        with self.lock:
            if session.status in TERMINAL:
                return
            now = time.monotonic()
            session.status = status
            session.ended_at = now
            session.ended_by = by
            if session.running_at is not None:
                session.duration = max(0, round(now - session.running_at))
                session.finalize_at = now + session.plan.finalize_delay
            if status == "FAILED":
                session.failure, session.failure_code = failure, code
            room = session.room
        if room is not None:
            self.spawn(room.close())

    def spawn(self, coro: Any) -> None:
        loop = self.loop
        if loop is None:
            coro.close()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(coro)
        else:
            asyncio.run_coroutine_threadsafe(coro, loop)

    def issue_token(self, session: EmulatedSession, kind: Literal["backend", "frontend"]) -> str:
        token = "emu_lk_" + secrets.token_hex(24)
        identity = f"{kind}:{uuid.uuid4().hex[:12]}"
        with self.lock:
            self.tokens[token] = (session.id, identity, kind)
        return token

    def room_for(self, session: EmulatedSession) -> Room:
        with self.lock:
            if session.room is None:
                session.room = Room(self, session)
            return session.room

    def start_running(self, session: EmulatedSession) -> None:
        with self.lock:
            if session.running_at is not None or session.status in TERMINAL:
                return
            session.running_at = time.monotonic()
            session.status = "RUNNING"
            limit = session.plan.practical_limit
            if session.body.get("maxDuration"):
                limit = min(limit, float(session.body["maxDuration"]))
        assert self.loop is not None
        self.loop.call_later(limit, self.finish, session, "COMPLETED")

    # ------------------------------------------------------------ conversations
    def conversation(self, session: EmulatedSession) -> dict[str, Any]:
        now = time.monotonic()
        status = session.conversation_status(now)
        preset = session.body["avatar"].get("presetId")
        name = (
            preset.replace("-", " ").title()
            if preset
            else self.avatars.get(session.body["avatar"].get("avatarId"), {}).get("name")
        )
        out: dict[str, Any] = {
            "id": session.id,
            "name": name or "Avatar",
            "status": status,
            "createdAt": _iso(session.created_wall),
            "avatar": session.avatar_wire(),
            "tools": [
                {"type": t["type"], "name": t["name"], "description": t["description"]}
                for t in session.tools
            ],
            "transcript": [dict(turn) for turn in session.transcript],
            "maxDuration": session.body.get("maxDuration"),
        }
        if session.running_at is not None:
            started = session.created_wall + (session.running_at - session.created)
            out["startedAt"] = _iso(started)
        if status != "in_progress":
            assert session.ended_at is not None
            out["endedAt"] = _iso(session.created_wall + (session.ended_at - session.created))
            out["duration"] = session.duration or 0
            out["recordingUrl"] = f"{self.public_url}/recordings/{session.id}.mp4"
        if status == "failed":
            out["failure"] = session.failure
            out["failureCode"] = session.failure_code
        return out

    def conversation_summary(self, session: EmulatedSession) -> dict[str, Any]:
        full = self.conversation(session)
        summary: dict[str, Any] = {
            k: full[k] for k in ("id", "name", "status", "createdAt", "avatar") if k in full
        }
        summary["hasTools"] = bool(session.tools)
        if "duration" in full:
            summary["duration"] = full["duration"]
        return summary

    # ------------------------------------------------------------ avatars
    def add_avatar(
        self,
        name: str,
        *,
        avatar_id: str | None = None,
        status: str = "READY",
        personality: str = "A helpful assistant.",
        voice: str = "clara",
    ) -> str:
        avatar_id = avatar_id or str(uuid.uuid4())
        now = _iso(time.time())
        with self.lock:
            self.avatars[avatar_id] = {
                "id": avatar_id,
                "name": name,
                "status": status,
                "personality": personality,
                "voice": {"type": "runway-live-preset", "presetId": voice},
                "documentIds": [],
                "createdAt": now,
                "updatedAt": now,
            }
        return avatar_id


class Room:
    """One session's room: participants over websockets plus the scripted worker."""

    def __init__(self, emulator: Emulator, session: EmulatedSession) -> None:
        self.emulator = emulator
        self.session = session
        self.worker = f"worker:{session.id[:8]}"
        self.participants: dict[str, Participant] = {}
        self.pending: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self.worker_task: asyncio.Task[None] | None = None
        self.closed = False
        self.turns = {"user": 0, "assistant": 0}
        self.data_received: list[tuple[str, Any]] = []

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
        await self.broadcast(payload.encode(), sender=self.worker)

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
                "participants": [self.worker, *others],
            },
        )
        for other in list(self.participants.values()):
            if other is not participant:
                await self.send(
                    other, {"type": "participant_joined", "identity": participant.identity}
                )
        self.emulator.start_running(self.session)
        self._maybe_start(participant)
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
        except (ValueError, TypeError, KeyError):
            await self.send(participant, {"type": "error", "message": "malformed message"})
            return
        if kind == "register_rpc":
            participant.methods.add(str(message.get("method")))
            self._maybe_start(participant)
        elif kind == "publish_data":
            try:
                payload = base64.b64decode(message.get("data") or "", validate=True)
            except (binascii.Error, ValueError):
                await self.send(participant, {"type": "error", "message": "invalid base64"})
                return
            try:
                decoded: Any = json.loads(payload)
            except ValueError:
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
            entry = self.pending.pop(str(message.get("requestId")), None)
            if entry is not None and not entry[1].done():
                entry[1].set_result(message)

    # ------------------------------------------------------------ the worker
    def _maybe_start(self, participant: Participant) -> None:
        if self.worker_task is not None or self.closed:
            return
        rpc_tools = {t["name"] for t in self.session.tools if t.get("type") == "backend_rpc"}
        start_on = self.session.plan.start_on or ("backend" if rpc_tools else "join")
        if start_on == "backend":
            backends = [p for p in self.participants.values() if p.kind == "backend"]
            if not backends:
                return
            if not any(rpc_tools <= p.methods for p in backends):
                # Give the backend a moment to register its methods, then start anyway.
                if participant.kind == "backend" and not participant.methods:
                    assert self.emulator.loop is not None
                    self.emulator.loop.call_later(1.0, self._start_anyway)
                return
        self._start()

    def _start_anyway(self) -> None:
        if self.worker_task is None and not self.closed and self.participants:
            self._start()

    def _start(self) -> None:
        assert self.emulator.loop is not None
        self.worker_task = self.emulator.loop.create_task(self._play())

    async def _play(self) -> None:
        delay = self.session.plan.step_delay
        try:
            for step in self.session.script:
                if self.closed:
                    return
                if delay:
                    await asyncio.sleep(delay)
                await self._step(step)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("the emulated worker of session %s failed", self.session.id)

    def _record(self, **turn: Any) -> None:
        turn.setdefault("timestamp", _iso(time.time()))
        self.session.transcript.append(turn)

    async def _step(self, step: Step) -> None:
        if isinstance(step, Say):
            turn = self.turns[step.role]
            self.turns[step.role] += 1
            size = max(1, -(-len(step.say) // step.chunks))
            for start in range(0, max(len(step.say), 1), size):
                await self.say_data(
                    {
                        "type": "transcription",
                        "role": step.role,
                        "turn": turn,
                        "text": step.say[start : start + size],
                    }
                )
            self._record(role=step.role, content=step.say)
        elif isinstance(step, CallTool):
            await self._call_tool(step)
        elif isinstance(step, SendClientEvent):
            call_id = f"call_{uuid.uuid4().hex[:12]}"
            event = {"type": "client_event", "tool": step.client_event, "args": step.args}
            await self.say_data(event)
            if step.ack:
                await self.say_data(
                    {"type": "client_event", "tool": step.client_event,
                     "args": {"status": "event_sent"}}
                )
            self._record(
                role="assistant",
                content=None,
                toolCalls=[{"id": call_id, "name": step.client_event, "arguments": step.args}],
            )
        elif isinstance(step, SendData):
            text = step.data if isinstance(step.data, str) else json.dumps(step.data)
            await self.broadcast(text.encode(), sender=self.worker, topic=step.topic)
        elif isinstance(step, Wait):
            await asyncio.sleep(step.wait)
        elif isinstance(step, Hangup):
            self.emulator.finish(self.session, "COMPLETED", by="user")
        elif isinstance(step, Fail):
            self.emulator.finish(self.session, "FAILED", failure=step.fail, code=step.code)

    async def call(
        self, method: str, payload: str, *, caller: str, timeout: float
    ) -> dict[str, Any]:
        """Call ``method`` on the participant that registered it, like LiveKit RPC."""
        target = next((p for p in self.participants.values() if method in p.methods), None)
        if target is None:
            return {
                "error": {
                    "code": UNSUPPORTED_METHOD,
                    "message": "Method not supported at destination",
                }
            }
        assert self.emulator.loop is not None
        request_id = str(uuid.uuid4())
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

    async def _call_tool(self, step: CallTool) -> None:
        call_id = step.id or f"call_{uuid.uuid4().hex[:12]}"
        if step.payload is not None:
            payload = step.payload
        else:
            payload = json.dumps(step.args if step.bare else {"args": step.args})
        started = time.perf_counter()
        reply = await self.call(
            step.tool,
            payload,
            caller=step.caller or self.worker,
            timeout=step.timeout or self.session.tool_timeout(step.tool),
        )
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        result: dict[str, Any] = {"id": call_id, "name": step.tool, "durationMs": duration_ms}
        if reply.get("error"):
            result["result"] = None
            result["error"] = str(reply["error"].get("message"))
        else:
            raw = reply.get("payload")
            try:
                result["result"] = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                result["result"] = raw
        self._record(
            role="assistant",
            content=None,
            toolCalls=[{"id": call_id, "name": step.tool, "arguments": step.args}],
            toolResults=[result],
        )

    # ------------------------------------------------------------ closing
    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        task = self.worker_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        for participant in list(self.participants.values()):
            try:
                async with participant.lock:
                    await participant.ws.close(code=1000, reason="session ended")
            except Exception:
                pass
