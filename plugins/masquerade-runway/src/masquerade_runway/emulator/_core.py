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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ._faults import Fault, FaultBook, RecordedRequest
from ._library import Library
from ._room import Room
from ._script import DEFAULT_SCRIPT, SessionPlan, Step
from ._session import TERMINAL, EmulatedSession, iso

__all__ = ["Emulator", "EmulatedSession", "Fault", "RecordedRequest", "TERMINAL", "Account"]

#: How a READY session that nobody joined before ``expiresAt`` fails (the emulator's words:
#: Runway documents READY -> FAILED, not the code).
EXPIRED_FAILURE = "The session expired before anyone joined"
EXPIRED_CODE = "SESSION_EXPIRED"


@dataclass
class Account:
    """The account's limits, as the emulator enforces them.

    Attributes:
        concurrency: sessions at once (provisioning, READY or RUNNING); more wait
            ``NOT_READY`` with ``queued: true`` until one ends. ``None``: no limit.
        daily: sessions created per 24 hours; more are refused with 429. ``None``: no limit.
    """

    concurrency: int | None = None
    daily: int | None = None


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
        self.library = Library(self.lock)
        self.recording_secret = secrets.token_bytes(16)
        self.book = FaultBook(self.lock)
        self.plans: deque[SessionPlan] = deque()
        self.tokens: dict[str, tuple[str, str, Literal["backend", "frontend"]]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.account = Account()

    # ------------------------------------------------------------ sessions
    def next_plan(self) -> SessionPlan:
        with self.lock:
            return self.plans.popleft() if self.plans else self.plan

    def over_daily_limit(self) -> bool:
        """Whether the account created its daily number of sessions in the last 24 h."""
        daily = self.account.daily
        if daily is None:
            return False
        since = time.time() - 86400
        with self.lock:
            return sum(1 for s in self.sessions.values() if s.created_wall >= since) >= daily

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
            self.admit()
        self.refresh(session)
        return session

    def admit(self) -> None:
        # Sessions over the account's concurrency limit wait NOT_READY (queued), first come
        # first served; the timeline of a session starts when it is admitted.
        limit = self.account.concurrency
        waiting = [s for s in self.sessions.values() if s.admitted is None]
        if not waiting:
            return
        active = 0
        if limit is not None:
            active = sum(
                1
                for s in self.sessions.values()
                if s.admitted is not None and s.status not in TERMINAL
            )
        now = time.monotonic()
        for session in sorted(waiting, key=lambda s: s.created):
            if session.status in TERMINAL:
                session.admitted = now
                continue
            if limit is not None and active >= limit:
                break
            session.admitted = now
            active += 1
            plan = session.plan
            # Wake up when READY expires (and when a planned failure is due): nobody may
            # be polling then.
            provisioned = plan.queued + plan.provisioning
            self.later(provisioned + plan.fail_after + 0.001, self.refresh, session)
            self.later(provisioned + plan.ready_ttl + 0.001, self.refresh, session)

    def refresh(self, session: EmulatedSession) -> EmulatedSession:
        """Move the session along its timeline (NOT_READY -> READY -> ... ) as of now."""
        with self.lock:
            if session.status in TERMINAL or session.running_at is not None:
                return session
            if session.admitted is None:
                session.status, session.queued = "NOT_READY", True
                return session
            plan = session.plan
            now = time.monotonic()
            elapsed = now - session.admitted
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
                session.ready_at = session.admitted + provisioned
                session.session_key = "rsk_" + secrets.token_hex(24)
                wall_ready = session.created_wall + (session.ready_at - session.created)
                session.expires_at = iso(wall_ready + plan.ready_ttl)
            if (
                plan.fail_code is not None
                and plan.fail_at == "ready"
                and now >= session.ready_at + plan.fail_after
            ):
                self.finish(session, "FAILED", failure=plan.failure, code=plan.fail_code)
                return session
            if now >= session.ready_at + plan.ready_ttl:
                # Nobody joined before expiresAt: READY can only go on to FAILED.
                self.finish(session, "FAILED", failure=EXPIRED_FAILURE, code=EXPIRED_CODE)
                return session
            session.status, session.queued = "READY", False
            integration = session.body.get("integration") or {}
        if integration.get("type") == "livekit":
            # The avatar worker joins your LiveKit room as soon as the session is READY.
            self.start_running(session)
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
            if self.account.concurrency is not None:
                self.admit()
        if room is not None:
            self.spawn(room.close())

    def _call_on_loop(self, callback: Callable[..., object], *args: Any) -> bool:
        """Run ``callback(*args)`` on the emulator's loop: now when called from it, else
        soon (from any thread). False when the loop is not running."""
        loop = self.loop
        if loop is None:
            return False
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback(*args)
        else:
            loop.call_soon_threadsafe(callback, *args)
        return True

    def later(self, delay: float, callback: Callable[..., object], *args: Any) -> None:
        """Call ``callback(*args)`` on the emulator's loop after ``delay`` seconds (from
        any thread)."""
        loop = self.loop
        if loop is not None:
            self._call_on_loop(loop.call_later, delay, callback, *args)

    def spawn(self, coro: Any) -> None:
        """Run the coroutine ``coro`` as a task on the emulator's loop (from any thread)."""
        loop = self.loop
        if loop is None or not self._call_on_loop(loop.create_task, coro):
            coro.close()

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
        self.later(limit, self.finish, session, "COMPLETED")

    def inventory(self) -> list[dict[str, Any]]:
        """Every session created so far, as ``GET /_emulator/sessions`` lists them."""
        with self.lock:
            sessions = list(self.sessions.values())
            for session in sessions:
                self.refresh(session)
            return [session.inventory() for session in sessions]

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
        """A custom avatar with a fixed ``status`` (no processing), for tests."""
        avatar = self.library.add_avatar(
            {
                "name": name,
                "personality": personality,
                "voice": {"type": "runway-live-preset", "presetId": voice},
                "referenceImage": "https://example.com/avatar.png",
            },
            avatar_id=avatar_id,
        )
        avatar.forced_status = status
        return avatar.id
