"""Running the emulator: :class:`RunwayEmulator` (in-process, on a background thread) and
:func:`serve` (the ``masquerade emulate runway`` entry point)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn

from ._app import build_app
from ._core import TERMINAL, Account, Emulator, Fault, RecordedRequest
from ._script import OFFLINE_SCRIPT, SessionPlan, Step, load_script, parse_script

if TYPE_CHECKING:
    from .._provider import RunwayProvider

__all__ = ["RunwayEmulator", "serve"]

logger = logging.getLogger("masquerade.runway.emulator")

ScriptSource = str | Path | Iterable[Step | Mapping[str, Any]] | Mapping[str, Any]


def _file_account(script: Any) -> Account | None:
    data = script
    if isinstance(script, str | Path):
        data = json.loads(Path(script).read_text())
    if isinstance(data, Mapping) and data.get("account") is not None:
        return Account(**dict(data["account"]))
    return None


class RunwayEmulator:
    """A loopback Runway API with a scripted avatar, for demos, examples and tests.

    It serves Runway's REST API (realtime sessions, consume, connect_backend, avatar
    conversations, avatars) and its own websocket room on ``127.0.0.1``, from a
    background thread with its own event loop: it works the same from asyncio, trio and
    synchronous code (the official ``runwayml`` SDK included)::

        async with RunwayEmulator(script=SCRIPT) as emulator:
            provider = emulator.provider()       # RunwayProvider(base_url, api_key, room)
            async with masquerade.Host(plugins=[provider]) as host:
                result = await host.run_session(SessionRequest(provider="runway", ...))

        with RunwayEmulator() as emulator:       # synchronous use works too
            runwayml.RunwayML(api_key=emulator.api_key, base_url=emulator.base_url)

    Args:
        script: the conversation every session plays (see :mod:`._script`): steps, a JSON
            file, or ``{"steps": [...], "plan": {...}}``. Default: a short greeting.
        api_key: the only key accepted (default: a random ``key_...``).
        host, port: where to listen (default: a free port on 127.0.0.1).
        plan: how sessions behave (a :class:`SessionPlan` or its fields as a dict);
            :meth:`plan_next` overrides it for the next sessions created.
        account: the account's limits (an :class:`Account` or its fields:
            ``concurrency``, ``daily``); a script file's ``"account"`` member sets them
            too, so ``masquerade emulate runway --script FILE`` can. Change them later with
            :meth:`set_account`.
        avatar_processing: seconds a new custom avatar stays ``PROCESSING``.
    """

    def __init__(
        self,
        script: ScriptSource | None = None,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        plan: SessionPlan | Mapping[str, Any] | None = None,
        account: Account | Mapping[str, Any] | None = None,
        avatar_processing: float = 0.05,
    ) -> None:
        steps: list[Step] | None = None
        file_plan: SessionPlan | None = None
        if script is not None:
            steps, file_plan = load_script(script)
            if account is None:
                account = _file_account(script)
        if plan is None:
            plan = file_plan or SessionPlan()
        elif not isinstance(plan, SessionPlan):
            plan = SessionPlan.model_validate(dict(plan))
        self._api_key = api_key or "key_" + secrets.token_hex(64)
        self.host = host
        self.port = port
        self.core = Emulator(api_key=self._api_key, script=steps, plan=plan)
        self.core.library.processing_delay = avatar_processing
        if account is not None:
            self.set_account(account)
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RunwayEmulator {self.base_url if self.running else ''} {state}>"

    # ------------------------------------------------------------------ wiring
    @property
    def api_key(self) -> str:
        """The key the emulator accepts (a throwaway; it is not a Runway key)."""
        return self._api_key

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: use it as ``RUNWAYML_BASE_URL``."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._ready.is_set()

    def provider(self, **options: Any) -> RunwayProvider:
        """A :class:`~masquerade_runway.RunwayProvider` wired to this emulator (its
        ``base_url``, ``api_key`` and ``room="emulator"``); ``options`` go to it too."""
        from .._provider import RunwayProvider

        options.setdefault("room", "emulator")
        return RunwayProvider(base_url=self.base_url, api_key=self.api_key, **options)

    def environ(self) -> dict[str, str]:
        """``RUNWAYML_BASE_URL`` and ``RUNWAYML_API_SECRET`` for this emulator."""
        return {"RUNWAYML_BASE_URL": self.base_url, "RUNWAYML_API_SECRET": self.api_key}

    # ------------------------------------------------------------------ running
    def start(self) -> RunwayEmulator:
        """Start serving (blocks until the server listens). Prefer ``with``/``async with``."""
        if self._thread is not None:
            return self
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets created with it,
        # and without it every small answer waits for a delayed ACK (about 40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        self.core.public_url = self.base_url
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name=f"runway-emulator:{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(15) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the Runway emulator failed to start: {self._error!r}")
        return self

    def _run(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.core.loop = loop
        try:
            loop.run_until_complete(self._serve(sock))
        except BaseException as exc:  # reported to start(); the thread just ends
            self._error = exc
            self._ready.set()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                sock.close()

    async def _serve(self, sock: socket.socket) -> None:
        config = uvicorn.Config(
            build_app(self.core),
            log_config=None,  # never reconfigure the host application's logging
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="websockets-sansio",
            ws_ping_interval=None,
            timeout_graceful_shutdown=1,
            backlog=2048,
            limit_concurrency=None,
        )
        server = self._server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn has no event)
            await asyncio.sleep(0.002)
        self._ready.set()
        await task

    async def _close_rooms(self) -> None:
        with self.core.lock:
            rooms = [s.room for s in self.core.sessions.values() if s.room is not None]
        for room in rooms:
            await room.close()

    def stop(self) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        thread, self._thread = self._thread, None
        loop = self.core.loop
        if thread is None:
            return
        if loop is not None and thread.is_alive() and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._close_rooms(), loop).result(3)
            except Exception:
                logger.debug("closing the emulator's rooms failed", exc_info=True)
        if self._server is not None:
            self._server.should_exit = True
        thread.join(10)
        self._ready.clear()

    def __enter__(self) -> RunwayEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> RunwayEmulator:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.stop)

    # ------------------------------------------------------------------ behaviour
    def plan_next(self, plan: SessionPlan | None = None, /, **fields: Any) -> SessionPlan:
        """Make the next created session follow ``plan`` (or the default plan with
        ``fields`` changed); call it several times to queue plans."""
        if plan is None:
            data = {name: getattr(self.core.plan, name) for name in SessionPlan.model_fields}
            data.update(fields)
            if fields.get("script") is not None:
                data["script"] = parse_script(fields["script"])
            plan = SessionPlan.model_validate(data)
        with self.core.lock:
            self.core.plans.append(plan)
        return plan

    def inject(self, fault: Fault | None = None, /, **fields: Any) -> Fault:
        """Inject a :class:`Fault` into the next matching requests::

            emulator.inject(status=429, retry_after=0.05, method="GET", times=2)
            emulator.inject(status=503, method="POST", path="/v1/realtime_sessions$")
            emulator.inject(delay=0.5, path="/avatar_conversations/")   # slow answers
        """
        fault = fault or Fault(**fields)
        with self.core.lock:
            self.core.book.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.core.lock:
            self.core.book.faults.clear()

    def set_account(
        self, account: Account | Mapping[str, Any] | None = None, **fields: Any
    ) -> None:
        """Set the account's limits::

            emulator.set_account(concurrency=2)   # a third session waits NOT_READY, queued
            emulator.set_account(daily=10)        # the eleventh create today answers 429
        """
        if account is None:
            account = Account(**fields)
        elif not isinstance(account, Account):
            account = Account(**dict(account))
        with self.core.lock:
            self.core.account = account
            self.core.admit()

    def add_avatar(self, name: str, **fields: Any) -> str:
        """Add a custom avatar (``status``, ``personality``, ``voice``, ``avatar_id``);
        returns its id, usable as ``SessionRequest(avatar=...)``."""
        return self.core.add_avatar(name, **fields)

    # ------------------------------------------------------------------ inspection
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every HTTP request received so far, with the status it got."""
        with self.core.lock:
            return list(self.core.book.requests)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched ``method`` and a ``path`` prefix."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path.startswith(path))
        )

    def session(self, session_id: str) -> dict[str, Any]:
        """A snapshot of one session: ``status``, ``ended_by`` (``"api"`` for DELETE, a
        participant identity for END_CALL, ``"user"`` for a scripted hangup), ``polls``,
        ``consumed``, ``transcript``, ``data`` (messages participants published)..."""
        with self.core.lock:
            found = self.core.sessions.get(session_id)
            if found is None:
                raise KeyError(session_id)
            self.core.refresh(found)
            return {
                "id": found.id,
                "status": found.status,
                "queued": found.queued,
                "ended_by": found.ended_by,
                "polls": found.polls,
                "consumed": found.consumed,
                "duration": found.duration,
                "failure_code": found.failure_code,
                "ready_at": found.ready_at,
                "running_at": found.running_at,
                "body": dict(found.body),
                "transcript": [dict(t) for t in found.transcript],
                "data": list(found.room.data_received) if found.room else [],
                "participants": sorted(found.room.participants) if found.room else [],
                "tool_calls": [call.to_wire() for call in found.calls.values()],
            }

    def inventory(self) -> list[dict[str, Any]]:
        """Every session created so far as ``GET /_emulator/sessions`` lists it: ``id``,
        ``status``, ``createdAt``, ``endedBy`` and ``toolCalls`` (each backend tool call's
        ``id``, ``name``, ``answers`` received and ``error``)."""
        return self.core.inventory()

    @property
    def session_ids(self) -> list[str]:
        with self.core.lock:
            return list(self.core.sessions)

    def wait_until(self, session_id: str, status: str, timeout: float = 20.0) -> bool:
        """Block until the session has ``status`` (for synchronous tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.session(session_id)["status"] == status:
                return True
            time.sleep(0.01)
        return False

    @staticmethod
    def terminal(status: str) -> bool:
        return status in TERMINAL


async def serve(
    *,
    host: str,
    port: int,
    api_key: str,
    ready: Callable[[str], None],
    script: str | None = None,
) -> None:
    """The ``masquerade emulate runway`` entry point: serve until cancelled. Without a
    script it plays :data:`OFFLINE_SCRIPT`, a complete call that hangs up."""
    emulator = RunwayEmulator(
        script=script if script is not None else OFFLINE_SCRIPT,
        api_key=api_key,
        host=host,
        port=port,
    )
    async with emulator:
        ready(emulator.base_url)
        await anyio.sleep_forever()
