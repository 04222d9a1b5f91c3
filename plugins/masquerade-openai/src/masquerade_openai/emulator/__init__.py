"""A loopback emulator of the OpenAI Realtime API (GA), for tests, demos and benchmarks.

It serves, on one local port, what the service serves: the websocket ``/v1/realtime``
(``?model=`` or ``?call_id=``; the key as a bearer token or, as browsers send it, in the
subprotocol ``openai-insecure-api-key.<key>``), ephemeral keys
(``POST /v1/realtime/client_secrets``), WebRTC calls (``POST /v1/realtime/calls``: a valid
SDP answer and a ``Location`` header, no media), the call endpoints
``/v1/realtime/calls/{call_id}/accept|reject|hangup|refer``, and it sends signed
``realtime.call.incoming`` webhooks. Ephemeral keys expire on the emulator's clock, which
tests move forward with :meth:`~OpenAIRealtimeEmulator.advance_clock`. A scripted model answers (see
:class:`EmulatorScript`): it replies to text and committed audio, streams audio deltas of
real size (100 ms of 24 kHz PCM16 each), calls tools and waits for their outputs, obeys
cancel and truncate, emulates server VAD and barge-in, and refuses a ``response.create``
during an active response with ``conversation_already_has_active_response``.

It runs in a background thread with its own asyncio loop, so tests on asyncio and on trio
use it the same way::

    with OpenAIRealtimeEmulator() as emu:
        client = openai.AsyncOpenAI(api_key=emu.api_key, base_url=emu.base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            ...

From the command line: ``masquerade emulate openai [--port N] [--api-key KEY]``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import secrets
import threading
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from masquerade import register_secret

from .._webhooks import new_webhook_secret
from ._app import EmulatorApp
from ._audio import AUDIO_CHUNK_B64
from ._autoplay import OFFLINE_SCRIPT
from ._calls import CallRecord
from ._realtime import ConnectionRecord, RealtimeServerSession
from ._script import EmulatorScript, Rule, ToolStep
from ._sdp import SAMPLE_OFFER

if TYPE_CHECKING:
    from .._provider import OpenAIRealtimeProvider

__all__ = [
    "OpenAIRealtimeEmulator",
    "EmulatorScript",
    "Rule",
    "ToolStep",
    "ConnectionRecord",
    "CallRecord",
    "serve",
    "AUDIO_CHUNK_B64",
    "OFFLINE_SCRIPT",
    "SAMPLE_OFFER",
]

T = TypeVar("T")


class OpenAIRealtimeEmulator:
    """The emulator in a background thread (its own asyncio loop); a context manager.

    Args:
        api_key: the only key accepted (default: a random ``emu_...`` key).
        script: an :class:`EmulatorScript` (or a dict, or a path to a JSON file).
        host, port: where to listen (port 0: a free one).
        webhook_secret: the signing secret for webhooks (default: a fresh ``whsec_``).

    Attributes:
        base_url: the REST base URL (``http://127.0.0.1:PORT/v1``), as the official SDK
            and :class:`~masquerade_openai.OpenAIRealtimeProvider` take it.
        websocket_url: ``ws://127.0.0.1:PORT/v1/realtime`` (add ``?model=...``).
        connections: a :class:`ConnectionRecord` per websocket, in order.
        calls: the :class:`CallRecord` of each SIP call, by call id.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        script: EmulatorScript | Mapping[str, Any] | str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_secret: str | None = None,
    ) -> None:
        self.api_key = api_key or f"emu_{secrets.token_hex(20)}"
        register_secret(self.api_key)  # it is still a key: never in a log line
        self.host = host
        self.port = port
        self.webhook_secret = webhook_secret or new_webhook_secret()
        self._app = EmulatorApp(self.api_key, _as_script(script), self.webhook_secret)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"<OpenAIRealtimeEmulator {self.base_url if self.port else '(stopped)'}>"

    # ------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def websocket_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1/realtime"

    @property
    def script(self) -> EmulatorScript:
        return self._app.script

    @script.setter
    def script(self, value: EmulatorScript | Mapping[str, Any] | str | Path) -> None:
        """Replace the script (takes effect for new connections)."""
        self._app.script = _as_script(value)

    def start(self) -> OpenAIRealtimeEmulator:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._main, name="openai-emulator", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._stop is not None:
            loop.call_soon_threadsafe(self._stop.set)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> OpenAIRealtimeEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> OpenAIRealtimeEmulator:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await anyio.to_thread.run_sync(self.stop)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._failure = exc
            self._started.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self.port = await self._app.server.start(self.host, self.port)
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await self._app.server.stop()

    def _submit(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T]:
        """Start ``fn()`` on the emulator's loop, in a fresh context.

        ``run_coroutine_threadsafe`` would run it in a copy of the *caller's* context,
        where sniffio may say "trio": libraries that look (httpx) would then use trio
        primitives on the emulator's asyncio loop.
        """
        loop = self._loop
        if loop is None:
            raise RuntimeError("the emulator is not running: call start() or use `with`")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def start() -> None:
            task = loop.create_task(fn())

            def finished(done: asyncio.Task[T]) -> None:
                if done.cancelled():
                    future.cancel()
                elif done.exception() is not None:
                    future.set_exception(done.exception())
                else:
                    future.set_result(done.result())

            task.add_done_callback(finished)

        loop.call_soon_threadsafe(start, context=contextvars.Context())
        return future

    def _run(self, fn: Callable[[], Coroutine[Any, Any, T]], timeout: float = 10) -> T:
        """Run ``fn()`` on the emulator's loop and wait for its result (any thread)."""
        return self._submit(fn).result(timeout)

    async def _run_async(self, fn: Callable[[], Coroutine[Any, Any, T]],
                         timeout: float = 10) -> T:
        """Like :meth:`_run` without blocking the caller's event loop (asyncio or trio)."""
        future = self._submit(fn)
        return await anyio.to_thread.run_sync(future.result, timeout)

    def provider(self, **options: Any) -> OpenAIRealtimeProvider:
        """An :class:`~masquerade_openai.OpenAIRealtimeProvider` pointed at this emulator
        (options are :class:`~masquerade_openai.RealtimeOptions` defaults)."""
        from .._provider import OpenAIRealtimeProvider

        return OpenAIRealtimeProvider(api_key=self.api_key, base_url=self.base_url, **options)

    # ------------------------------------------------------------ inspection
    @property
    def connections(self) -> list[ConnectionRecord]:
        return list(self._app.connections)

    @property
    def calls(self) -> dict[str, CallRecord]:
        return dict(self._app.calls)

    @property
    def http_requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every REST request, in order."""
        return list(self._app.http_requests)

    def connection(self, index: int = -1) -> ConnectionRecord:
        return self._app.connections[index]

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.01
    ) -> None:
        """Wait (on any anyio backend) until ``predicate()`` is true, or raise TimeoutError."""
        with anyio.fail_after(timeout):
            while not predicate():  # noqa: ASYNC110 - the state lives in another thread
                await anyio.sleep(interval)

    # ------------------------------------------------------------ fault injection
    # These return once the emulator has acted, without waiting for the client to read:
    # in a test the caller usually *is* the client's thread.
    def _session(self, index: int) -> RealtimeServerSession:
        return self._app.sessions[index]

    def drop(self, index: int = -1) -> None:
        """Drop a websocket without a closing handshake (the client sees code 1006)."""
        session = self._session(index)

        async def drop() -> None:
            session.conn.abort()

        self._run(drop)

    def close(self, code: int = 1011, reason: str = "", index: int = -1) -> None:
        """Close a websocket with ``code`` (1011: internal error, 1012: service restart...)."""
        session = self._session(index)

        async def close() -> None:
            # Not waiting for the client's answer: the caller may be the client's thread.
            session.conn.start_close(code, reason)

        self._run(close)

    def expire(self, index: int = -1) -> None:
        """End a session as its time limit does: ``session_expired`` error, then close."""
        session = self._session(index)

        async def expire() -> None:
            session.expire()

        self._run(expire)

    def inject(self, event: Mapping[str, Any] | str, index: int = -1) -> None:
        """Send a server event (a dict) or a raw text frame (e.g. malformed JSON)."""
        session = self._session(index)

        async def send() -> None:
            if isinstance(event, str):
                session.conn.send_text(event)
            else:
                session.send(dict(event))

        self._run(send)

    def hold(self, index: int = -1) -> None:
        """Hold back everything the server sends on a connection (it keeps processing
        client events), until :meth:`release`: stages races deterministically."""
        session = self._session(index)

        async def hold() -> None:
            session.conn.hold()

        self._run(hold)

    def release(self, index: int = -1) -> None:
        """Send what :meth:`hold` kept back, in order."""
        session = self._session(index)

        async def release() -> None:
            session.conn.release()

        self._run(release)

    def speak(self, text: str | None = None, *, index: int = -1) -> None:
        """A caller's utterance on the session (speech started/stopped, committed user
        item with ``text`` as its transcript, then a response when VAD creates them)."""
        session = self._session(index)

        async def say() -> None:
            await session.caller_says(text or "(inaudible)")

        self._run(say)

    # ------------------------------------------------------------ ephemeral keys
    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward: ephemeral keys expire as if ``seconds`` had
        passed (and keys minted afterwards carry ``expires_at`` on the moved clock)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        keys = self._app.keys

        async def advance() -> None:
            keys.clock_offset += seconds

        self._run(advance)

    @property
    def expired_key_refusal(self) -> str:
        """How a websocket with an expired ephemeral key is refused: ``"http"`` (the
        default: 401 with an error body before the upgrade) or ``"event"`` (the upgrade is
        accepted, then an ``invalid_api_key`` error event and close code 4000)."""
        return self._app.expired_key_refusal

    @expired_key_refusal.setter
    def expired_key_refusal(self, value: str) -> None:
        if value not in ("http", "event"):
            raise ValueError("expired_key_refusal is 'http' or 'event'")
        self._app.expired_key_refusal = value

    # ------------------------------------------------------------ SIP calls
    def new_call(self, sip_headers: Mapping[str, str] | None = None) -> str:
        """Register a ringing SIP call; returns its call id (no webhook is sent)."""
        return self._app.desk.new_call(sip_headers).call_id

    def webhook_request(self, call_id: str, *, timestamp: int | None = None
                        ) -> tuple[bytes, dict[str, str]]:
        """The body and signed headers of the ``realtime.call.incoming`` webhook."""
        return self._app.desk.webhook_request(self._app.calls[call_id], timestamp=timestamp)

    async def ring(self, webhook_url: str, *, sip_headers: Mapping[str, str] | None = None,
                   timeout: float = 10.0) -> tuple[str, int]:
        """Place an incoming call: register it and POST its signed webhook to
        ``webhook_url`` from the emulator's thread. Returns ``(call_id, HTTP status)``."""
        call = self._app.desk.new_call(sip_headers)
        body, headers = self._app.desk.webhook_request(call)

        async def post() -> int:
            import httpx

            async with httpx.AsyncClient(timeout=timeout) as client:
                response = await client.post(
                    webhook_url, content=body,
                    headers={**headers, "content-type": "application/json",
                             "user-agent": "OpenAI/1.0 (webhooks)"},
                )
                return response.status_code

        status = await self._run_async(post, timeout + 1)
        return call.call_id, status

    def caller_hangs_up(self, call_id: str) -> None:
        """The caller hangs up: attached sockets close with 1000, accept answers 404."""
        call = self._app.calls[call_id]
        self._run(lambda: self._app.desk.end_call(call, "ended", by="caller"))


def _as_script(value: EmulatorScript | Mapping[str, Any] | str | Path | None) -> EmulatorScript:
    if value is None:
        return EmulatorScript()
    if isinstance(value, EmulatorScript):
        return value
    if isinstance(value, str | Path):
        return EmulatorScript.load(value)
    return EmulatorScript.model_validate(dict(value))


async def serve(
    *,
    host: str,
    port: int,
    api_key: str,
    ready: Callable[[str], None],
    script: str | None = None,
) -> None:
    """Serve the emulator on the current asyncio loop until cancelled (the CLI's entry).
    Without a script it plays :data:`OFFLINE_SCRIPT`: a complete call that hangs up."""
    register_secret(api_key)
    played = _as_script(script) if script is not None else OFFLINE_SCRIPT
    app = EmulatorApp(api_key, played, new_webhook_secret())
    bound = await app.server.start(host, port)
    ready(f"http://{host}:{bound}/v1")
    try:
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(app.server.stop())

