"""A loopback emulator of the OpenAI Realtime API (GA), for tests, demos and benchmarks.

It serves, on one local port, what the service serves: the websocket ``/v1/realtime``
(``?model=`` or ``?call_id=``, bearer auth), the SIP call endpoints
``/v1/realtime/calls/{call_id}/accept|reject|hangup|refer``, and it sends signed
``realtime.call.incoming`` webhooks. A scripted model answers (see
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
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.to_thread

from masquerade import register_secret

from .._webhooks import new_webhook_secret, sign_webhook
from ._realtime import AUDIO_CHUNK_B64, ConnectionRecord, RealtimeServerSession
from ._script import EmulatorScript, Rule, ToolStep
from ._wire import HttpRequest, HttpResponse, WireServer, WsConnection, json_response

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
]

T = TypeVar("T")
_CALL_PATH = re.compile(r"^/v1/realtime/calls/([^/]+)/(accept|reject|hangup|refer)$")


@dataclass
class CallRecord:
    """One emulated SIP call.

    ``state`` goes ``incoming`` -> ``accepted`` | ``rejected``; an accepted call ends as
    ``ended`` (hangup, by either side) or ``referred`` (transferred).
    """

    call_id: str
    sip_headers: list[dict[str, str]] = field(default_factory=list)
    state: str = "incoming"
    accept_config: dict[str, Any] | None = None
    reject_status: int | None = None
    refer_target: str | None = None
    hung_up_by: str | None = None
    sessions: list[RealtimeServerSession] = field(default_factory=list)


_CallRecord = CallRecord


def _error(message: str, code: str | None, *, param: str | None = None,
           kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class _App:
    """The emulator's state and request handling (runs on the emulator's loop)."""

    def __init__(self, api_key: str, script: EmulatorScript, webhook_secret: str) -> None:
        self.api_key = api_key
        self.script = script
        self.webhook_secret = webhook_secret
        self.connections: list[ConnectionRecord] = []
        self.sessions: list[RealtimeServerSession] = []
        self.calls: dict[str, CallRecord] = {}
        self.http_requests: list[tuple[str, str]] = []
        self.server = WireServer(http=self.http, authorize_ws=self.authorize,
                                 websocket=self.websocket)

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        expected = f"Bearer {self.api_key}"
        return secrets.compare_digest(headers.get("authorization", ""), expected)

    # ------------------------------------------------------------ HTTP
    async def http(self, request: HttpRequest) -> HttpResponse:
        self.http_requests.append((request.method, request.path))
        if not self._authorized(request.headers):
            return json_response(401, _error(
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.", "invalid_api_key"))
        match = _CALL_PATH.match(request.path)
        if match is None:
            return json_response(404, _error(f"Unknown path {request.path}", "not_found"))
        if request.method != "POST":
            return json_response(405, _error("Method not allowed", "method_not_allowed"))
        call_id, action = match.group(1), match.group(2)
        call = self.calls.get(call_id)
        try:
            body = request.json() if request.body else None
        except ValueError:
            return json_response(400, _error("The body is not valid JSON.", "invalid_json"))
        if call is None:
            return json_response(404, _error(f"Call '{call_id}' not found.", "call_not_found"))
        if action == "accept":
            if call.state != "incoming":
                return json_response(404, _error(f"Call '{call_id}' is no longer ringing.",
                                                 "call_not_found"))
            if not isinstance(body, dict) or body.get("type") != "realtime":
                return json_response(400, _error("Missing required parameter: 'type'.",
                                                 "missing_required_parameter", param="type"))
            call.state = "accepted"
            call.accept_config = {k: v for k, v in body.items() if k != "type"}
            return json_response(200)
        if action == "reject":
            if call.state != "incoming":
                return json_response(404, _error(f"Call '{call_id}' is no longer ringing.",
                                                 "call_not_found"))
            status = (body or {}).get("status_code", 603) if isinstance(body, dict) else 603
            call.state = "rejected"
            call.reject_status = int(status)
            return json_response(200)
        if call.state not in ("accepted", "incoming"):
            return json_response(404, _error(f"Call '{call_id}' has ended.", "call_not_found"))
        if action == "hangup":
            await self._end_call(call, "ended", by="server")
            return json_response(200)
        target = body.get("target_uri") if isinstance(body, dict) else None
        if not isinstance(target, str) or not target:
            return json_response(400, _error("Missing required parameter: 'target_uri'.",
                                             "missing_required_parameter", param="target_uri"))
        call.refer_target = target
        await self._end_call(call, "referred", by="server")
        return json_response(200)

    async def _end_call(self, call: CallRecord, state: str, *, by: str) -> None:
        call.state = state
        call.hung_up_by = by
        for session in list(call.sessions):
            session.conn.start_close(1000, "call ended")

    # ------------------------------------------------------------ websocket
    def authorize(self, request: HttpRequest) -> HttpResponse | None:
        if request.path.rstrip("/") != "/v1/realtime":
            return json_response(404, _error(f"Unknown path {request.path}", "not_found"))
        if not self._authorized(request.headers):
            return json_response(401, _error(
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.", "invalid_api_key"))
        model, call_id = request.query.get("model"), request.query.get("call_id")
        if model and call_id:
            return json_response(400, _error("Specify either 'model' or 'call_id', not both.",
                                             "invalid_request_error"))
        if not model and not call_id:
            return json_response(400, _error("Missing required parameter: 'model'.",
                                             "missing_required_parameter", param="model"))
        if call_id:
            call = self.calls.get(call_id)
            if call is None or call.state != "accepted":
                return json_response(404, _error(f"Call '{call_id}' not found or not active.",
                                                 "call_not_found"))
        return None

    async def websocket(self, connection: WsConnection) -> None:
        query = dict(parse_qsl(urlsplit(connection.request.path).query))
        headers = {k.lower(): v for k, v in connection.request.headers.raw_items()
                   if k.lower() != "authorization"}
        record = ConnectionRecord(index=len(self.connections), query=query, headers=headers)
        self.connections.append(record)
        if headers.get("openai-beta", "").startswith("realtime="):
            # The beta protocol is switched off: the service accepts, explains, closes.
            connection.send_json({"type": "error", "event_id": "event_beta", "error": {
                "type": "invalid_request_error", "code": "beta_api_shape_disabled",
                "message": "The Realtime Beta API is no longer supported. Please use "
                           "/v1/realtime for the GA API.", "param": None, "event_id": None}})
            connection.start_close(4000, "invalid_request_error.beta_api_shape_disabled")
            async for _ignored in connection.messages():  # until the client answers
                pass
            record.closed, record.close_code = True, 4000
            return
        call = self.calls.get(query["call_id"]) if "call_id" in query else None
        session = RealtimeServerSession(
            connection, record, self.script,
            model=query.get("model", "gpt-realtime"), call=call,
        )
        self.sessions.append(session)
        if call is not None:
            call.sessions.append(session)
        try:
            await session.run()
        finally:
            if call is not None and session in call.sessions:
                call.sessions.remove(session)

    # ------------------------------------------------------------ calls and webhooks
    def new_call(self, sip_headers: Mapping[str, str] | None = None) -> CallRecord:
        call_id = f"rtc_{uuid.uuid4().hex[:24]}"
        headers = [{"name": k, "value": v} for k, v in (sip_headers or {
            "From": "\"Caller\" <sip:+14155550100@example.com>;tag=emu",
            "To": "<sip:+14155550199@sip.api.openai.com>",
            "Call-ID": f"{uuid.uuid4().hex}@emulator",
        }).items()]
        call = CallRecord(call_id=call_id, sip_headers=headers)
        self.calls[call_id] = call
        return call

    def webhook_request(
        self, call: CallRecord, *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        event: dict[str, Any] = {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "created_at": int(time.time()),
            "type": "realtime.call.incoming",
            "data": {"call_id": call.call_id, "sip_headers": call.sip_headers},
        }
        body = json.dumps(event).encode()
        headers = sign_webhook(body, self.webhook_secret, msg_id=event["id"],
                               timestamp=timestamp)
        return body, headers


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
        self._app = _App(self.api_key, _as_script(script), self.webhook_secret)
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
        self, predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01
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

    # ------------------------------------------------------------ SIP calls
    def new_call(self, sip_headers: Mapping[str, str] | None = None) -> str:
        """Register a ringing SIP call; returns its call id (no webhook is sent)."""
        return self._app.new_call(sip_headers).call_id

    def webhook_request(self, call_id: str, *, timestamp: int | None = None
                        ) -> tuple[bytes, dict[str, str]]:
        """The body and signed headers of the ``realtime.call.incoming`` webhook."""
        return self._app.webhook_request(self._app.calls[call_id], timestamp=timestamp)

    async def ring(self, webhook_url: str, *, sip_headers: Mapping[str, str] | None = None,
                   timeout: float = 10.0) -> tuple[str, int]:
        """Place an incoming call: register it and POST its signed webhook to
        ``webhook_url`` from the emulator's thread. Returns ``(call_id, HTTP status)``."""
        call = self._app.new_call(sip_headers)
        body, headers = self._app.webhook_request(call)

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
        self._run(lambda: self._app._end_call(call, "ended", by="caller"))


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
    """Serve the emulator on the current asyncio loop until cancelled (the CLI's entry)."""
    register_secret(api_key)
    app = _App(api_key, _as_script(script), new_webhook_secret())
    bound = await app.server.start(host, port)
    ready(f"http://{host}:{bound}/v1")
    try:
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(app.server.stop())

