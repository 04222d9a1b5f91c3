"""The emulator's state: sessions and their timeline (NOT_READY -> READY -> RUNNING ->
ended), custom avatars, room tokens, plans and faults.

Everything here runs on the emulator's own asyncio loop (see ``_server``); the few methods
tests call from other threads (faults, plans, snapshots) take ``Emulator.lock``. The rooms
are in ``_room``, the scripted avatar in ``_worker``, the wire shapes of conversations in
``_conversations``.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from collections import deque
from typing import Any, Literal

from ._faults import Fault, FaultBook, RecordedRequest
from ._room import Room
from ._script import DEFAULT_SCRIPT, SessionPlan, Step
from ._session import TERMINAL, EmulatedSession, iso

__all__ = ["Emulator", "EmulatedSession", "Fault", "RecordedRequest", "TERMINAL"]


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
        self.book = FaultBook(self.lock)
        self.plans: deque[SessionPlan] = deque()
        self.tokens: dict[str, tuple[str, str, Literal["backend", "frontend"]]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ sessions
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
                session.expires_at = iso(time.time() + 300)
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
        now = iso(time.time())
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
