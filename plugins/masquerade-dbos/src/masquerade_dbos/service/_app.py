"""The call service's ASGI application (starlette), on top of a running DurableGraph."""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from masquerade import MasqueradeError, redact

from .._durable import DurableGraph, RunHandle, RunInfo, run_id_for
from ._health import live_workers, public_state
from ._http import SIMPLE_TYPES, ApiError, bearer_token, guarded, with_cors
from ._openapi import openapi_schema
from ._replay import DatabaseReplayStore
from ._tokens import ClientTokens, load_service_secret

__all__ = ["ServiceConfig", "create_app", "ApiError"]

logger = logging.getLogger("masquerade.service")

_RUN_ID = re.compile(r"run_[0-9a-f]{24,64}")
_BODY_KEYS = ("state", "idempotency_key")


@dataclass(frozen=True)
class ServiceConfig:
    """How the service behaves.

    Attributes:
        api_key: the server-to-server key (``MASQUERADE_API_KEY``); ``None``: no key is
            asked (then listen on loopback only).
        webhook_secret: the OpenAI webhook signing secret (``OPENAI_WEBHOOK_SECRET``);
            ``None``: ``POST /v1/webhooks/openai`` answers 501.
        max_body_bytes: larger request bodies are refused with 413.
        max_wait: the longest ``wait`` of a credentials long-poll, in seconds.
        events_poll_interval: how often an event stream looks for new events.
        webhook_model: the model an incoming SIP call is accepted with.
    """

    api_key: str | None = None
    webhook_secret: str | None = None
    max_body_bytes: int = 64 * 1024
    max_wait: float = 60.0
    events_poll_interval: float = 0.2
    webhook_model: str = "gpt-realtime"


class _Service:
    def __init__(self, durable: DurableGraph[Any], config: ServiceConfig) -> None:
        self.durable = durable
        self.config = config
        self.tokens: ClientTokens | None = None
        self.webhook_store: Any = None

    # ------------------------------------------------------------------ helpers
    def require_key(self, request: Request) -> None:
        key = self.config.api_key
        if key is None:
            return
        given = bearer_token(request)
        if given is None:
            raise ApiError(401, "unauthorized", "this endpoint needs Authorization: Bearer <key>")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), key.encode()):
            raise ApiError(401, "unauthorized", "the API key is not valid")

    def require_key_or_token(self, request: Request, run_id: str) -> None:
        """The API key, or the client token of ``run_id`` (header or ``client_token``)."""
        given = bearer_token(request) or request.query_params.get("client_token")
        key = self.config.api_key
        if given is None:
            raise ApiError(
                401,
                "unauthorized",
                "this endpoint needs the run's client token (Authorization: Bearer <token> "
                "or ?client_token=) or the API key",
            )
        if key is not None and hmac.compare_digest(given.encode("utf-8", "replace"), key.encode()):
            return
        assert self.tokens is not None
        if not self.tokens.opens(given, run_id):
            raise ApiError(403, "forbidden", "this token does not open this run")

    async def body(self, request: Request) -> Any:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                raise ApiError(
                    400, "bad_request", "the Content-Length header is not a number"
                ) from None
            if too_big:
                raise ApiError(413, "body_too_large", f"the body is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "body_too_large", f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def json_body(self, request: Request) -> Any:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind in SIMPLE_TYPES:
            # Refused so that a web page on another site cannot start runs through a
            # visitor's browser: JSON needs a CORS preflight, which this API never grants.
            raise ApiError(415, "unsupported_media_type", "send the body as application/json")
        raw = await self.body(request)
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError(400, "invalid_json", "the body is not valid JSON") from None

    async def run(self, run_id: str) -> tuple[RunHandle[Any], RunInfo]:
        if not _RUN_ID.fullmatch(run_id):
            raise ApiError(404, "not_found", "no run has this id")
        handle = self.durable.handle(run_id)
        info = await handle.info()
        if info is None:
            raise ApiError(404, "not_found", "no run has this id")
        return handle, info

    def validate_state(self, state: Any) -> Any:
        model = self.durable.graph.state_model
        if not isinstance(state, dict):
            raise ApiError(422, "invalid_state", "state must be a JSON object")
        unknown = sorted(str(k) for k in state if k not in model.model_fields)
        if unknown:
            raise ApiError(
                422,
                "unknown_state_keys",
                f"state has unknown key(s) {', '.join(map(repr, unknown))}; the state "
                f"model {model.__name__} has: {', '.join(model.model_fields)}",
                keys=unknown,
            )
        try:
            return model.model_validate(state)
        except ValidationError as exc:
            details = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_input=False, include_url=False)
            ]
            raise ApiError(
                422, "invalid_state", f"state does not fit {model.__name__}", details=details
            ) from None

    async def submit(self, state: Any, key: str | None) -> tuple[RunHandle[Any], str]:
        handle = await self.durable.submit(state, idempotency_key=key)
        info = await handle.info()
        return handle, (info.status if info is not None else "queued")

    def created(self, handle: RunHandle[Any], status: str) -> JSONResponse:
        assert self.tokens is not None
        return JSONResponse(
            {"id": handle.id, "status": status, "client_token": self.tokens.token(handle.id)},
            status_code=202,
        )

    # ------------------------------------------------------------------ routes
    async def create_run(self, request: Request) -> Response:
        self.require_key(request)
        data = await self.json_body(request)
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_body", "the body must be a JSON object")
        unknown = sorted(k for k in data if k not in _BODY_KEYS)
        if unknown:
            raise ApiError(
                422,
                "unknown_keys",
                f"unknown key(s) {', '.join(map(repr, unknown))}; expected: state, idempotency_key",
                keys=unknown,
            )
        key = data.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 255):
            raise ApiError(
                422, "invalid_idempotency_key", "idempotency_key must be a string of 1-255 chars"
            )
        state = self.validate_state(data.get("state", {}))
        handle, status = await self.submit(state, key)
        return self.created(handle, status)

    async def get_run(self, request: Request) -> Response:
        self.require_key(request)
        _, info = await self.run(request.path_params["run_id"])
        return JSONResponse(
            {
                "id": info.id,
                "status": info.status,
                "state": public_state(info.state),
                "error": redact(info.error) if info.error is not None else None,
            }
        )

    async def credentials(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if not _RUN_ID.fullmatch(run_id):
            raise ApiError(404, "not_found", "no run has this id")
        self.require_key_or_token(request, run_id)
        raw_wait = request.query_params.get("wait", "0")
        try:
            wait = float(raw_wait)
        except ValueError:
            wait = -1.0
        if not 0 <= wait <= self.config.max_wait:
            raise ApiError(
                422,
                "invalid_wait",
                f"wait must be a number of seconds from 0 to {self.config.max_wait:g}",
            )
        handle, info = await self.run(run_id)
        deadline = anyio.current_time() + wait
        while True:
            remaining = deadline - anyio.current_time()
            # DBOS waits for the event; wake up each second to see whether the run ended.
            found = await handle.credentials(min(1.0, max(remaining, 0.0)))
            if found is not None or remaining <= 0 or info.ended:
                break
            info = await handle.info() or info
        if found is not None and not info.ended:
            # A cancelled run's session may not have said that it ended: look again.
            info = await handle.info() or info
        if info.ended:
            raise ApiError(
                409, "run_ended", f"the run is {info.status} and has no live session",
                status=info.status,
            )  # fmt: skip
        if found is not None and not found.get("ended"):
            return JSONResponse(
                {
                    "id": run_id,
                    "session": {
                        "state": "ready",
                        "node": found.get("node"),
                        "session_id": found.get("session_id"),
                        "provider": found.get("provider"),
                        "kind": found.get("kind"),
                    },
                    "credentials": found.get("credentials") or {},
                },
                headers={"Cache-Control": "no-store"},
            )
        if found is not None:
            raise ApiError(410, "session_ended", "the run's avatar session has ended")
        raise ApiError(
            408,
            "wait_expired",
            f"no avatar session of the run was ready within {wait:g}s; ask again",
            status=info.status,
        )

    async def events(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if not _RUN_ID.fullmatch(run_id):
            raise ApiError(404, "not_found", "no run has this id")
        if (
            self.config.api_key is not None
            or bearer_token(request)
            or "client_token" in (request.query_params)
        ):
            self.require_key_or_token(request, run_id)
        handle, info = await self.run(run_id)
        raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        after = 0
        if raw:
            try:
                after = int(raw)
            except ValueError:
                raise ApiError(
                    422, "invalid_last_event_id", "Last-Event-ID must be an integer"
                ) from None
            if after < 0:
                raise ApiError(422, "invalid_last_event_id", "Last-Event-ID must be >= 0")
        interval = self.config.events_poll_interval

        async def _follow() -> AsyncIterator[bytes]:
            last = after
            idle = 0.0
            yield b"retry: 1000\n\n"
            while True:
                batch = await handle.events(last)
                for event_id, data in batch:
                    last = event_id
                    yield f"id: {event_id}\ndata: {data}\n\n".encode()
                if batch:
                    idle = 0.0
                    continue
                current = await handle.info()
                if current is None or current.ended:
                    if not await handle.events(last):  # nothing written meanwhile
                        end = {"id": run_id, "status": current.status if current else "unknown"}
                        yield f"event: end\ndata: {json.dumps(end)}\n\n".encode()
                        return
                    continue
                await anyio.sleep(interval)
                idle += interval
                if idle >= 15:
                    idle = 0.0
                    yield b": keep-alive\n\n"

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for chunk in _follow():
                    yield chunk
            except Exception as exc:  # the service is stopping, or the database is gone
                logger.warning("the event stream of %s stopped: %s", run_id, type(exc).__name__)

        del info
        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def sdp(self, request: Request) -> Response:
        """A browser's WebRTC SDP offer in, the SDP answer of the run's session out."""
        run_id = request.path_params["run_id"]
        if not _RUN_ID.fullmatch(run_id):
            raise ApiError(404, "not_found", "no run has this id")
        self.require_key_or_token(request, run_id)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("application/sdp", "text/plain", ""):
            raise ApiError(415, "unsupported_media_type", "send the offer as application/sdp")
        raw = await self.body(request)
        try:
            offer = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_sdp", "the offer is not UTF-8 text") from None
        if not offer.startswith("v=0"):
            raise ApiError(400, "invalid_sdp", "the body is not an SDP offer (v=0 ...)")
        handle, info = await self.run(run_id)
        if info.ended:
            raise ApiError(409, "run_ended", f"the run is {info.status}", status=info.status)
        log = self.durable.run_log
        assert log is not None
        offer_id = await anyio.to_thread.run_sync(log.put, run_id, "offer", offer)
        deadline = anyio.current_time() + self.config.max_wait
        while anyio.current_time() < deadline:
            found = await anyio.to_thread.run_sync(log.take, run_id, ("answer", "error"), offer_id)
            if found is not None:
                _, kind, body = found
                if kind == "answer":
                    return Response(
                        body,
                        status_code=201,
                        media_type="application/sdp",
                        headers={"Cache-Control": "no-store"},
                    )
                raise ApiError(502, "offer_failed", f"the offer could not be answered: {body}")
            info = await handle.info() or info
            if info.ended:
                raise ApiError(409, "run_ended", f"the run is {info.status}", status=info.status)
            await anyio.sleep(0.1)
        raise ApiError(
            504,
            "offer_not_answered",
            "no browser-frontend session of the run answered the offer (is its node an "
            'OpenAI AvatarNode with options={"transport": "webrtc"}?)',
        )

    async def cancel(self, request: Request) -> Response:
        self.require_key(request)
        handle, info = await self.run(request.path_params["run_id"])
        if info.ended:
            raise ApiError(
                409, "run_ended", f"the run is already {info.status}", status=info.status
            )
        await handle.cancel()
        return JSONResponse({"id": handle.id, "status": "cancelled"}, status_code=202)

    async def webhook(self, request: Request) -> Response:
        secret = self.config.webhook_secret
        if secret is None:
            raise ApiError(
                501, "not_configured", "set OPENAI_WEBHOOK_SECRET to take OpenAI webhooks"
            )
        if "call_id" not in self.durable.graph.state_model.model_fields:
            raise ApiError(
                501,
                "not_configured",
                "the graph's state model has no call_id field to take an incoming call",
            )
        try:
            from masquerade_openai import (
                MemoryReplayStore,
                RealtimeCalls,
                WebhookVerificationError,
                verify_webhook,
            )
        except ImportError:
            raise ApiError(501, "not_configured", "masquerade-openai is not installed") from None
        if self.webhook_store is None:  # no database to share: this process remembers
            self.webhook_store = MemoryReplayStore()
        raw = await self.body(request)
        headers = dict(request.headers)
        try:
            # In a worker thread: the replay store claims the id in the database.
            event = await anyio.to_thread.run_sync(
                functools.partial(
                    verify_webhook, raw, headers, secret, replay_store=self.webhook_store
                )
            )
            call_id = event.call_id
        except WebhookVerificationError as exc:
            logger.warning("refused an OpenAI webhook: %s", exc.message)
            raise ApiError(400, "invalid_webhook", exc.message) from None
        key = f"openai-call:{call_id}"
        existing = await self.durable.handle(run_id_for(key)).info()
        if existing is not None:  # delivered again (a new webhook id): one run per call
            return JSONResponse({"id": existing.id, "status": existing.status, "call_id": call_id})
        fields = self.durable.graph.state_model.model_fields
        state: dict[str, Any] = {"call_id": call_id}
        if "sip_headers" in fields:
            state["sip_headers"] = event.sip_headers
        calls = RealtimeCalls()
        try:
            with anyio.fail_after(15):
                answered = await calls.accept(call_id, {"model": self.config.webhook_model})
        except (MasqueradeError, TimeoutError) as exc:
            message = exc.message if isinstance(exc, MasqueradeError) else "timed out"
            logger.warning("accepting call %s failed: %s", call_id, message)
            await self.release_webhook(headers)
            raise ApiError(502, "accept_failed", f"accepting the call failed: {message}") from None
        finally:
            await calls.aclose()
        if not answered:
            return JSONResponse({"call_id": call_id, "status": "caller_gone"})
        validated = self.validate_state(state)
        handle, status = await self.submit(validated, key)
        return JSONResponse({"id": handle.id, "status": status, "call_id": call_id})

    async def release_webhook(self, headers: dict[str, str]) -> None:
        """Forget a verified webhook's claim: nothing was done for it, and OpenAI retries
        a failed delivery with the same id, which must then be taken, not refused."""
        release = getattr(self.webhook_store, "release", None)
        if release is None:
            return
        try:
            with anyio.fail_after(5):
                await anyio.to_thread.run_sync(
                    release, headers["webhook-id"], abandon_on_cancel=True
                )
        except Exception as exc:  # best effort: the id expires with the tolerance window
            logger.warning("could not release a webhook id: %s", type(exc).__name__)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        log = self.durable.run_log
        checks: dict[str, Any] = {}
        ok = True
        try:
            assert log is not None
            with anyio.fail_after(5):
                checks["workers"] = await anyio.to_thread.run_sync(
                    live_workers, log.engine, self.durable
                )
            checks["database"] = "ok"
        except Exception as exc:
            ok = False
            checks["database"] = f"unreachable: {type(exc).__name__}"
        workers = checks.get("workers")
        if workers == 0:
            ok = False
        body = {"status": "ready" if ok else "not_ready", **checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_schema())

    async def join_page(self, request: Request) -> Response:
        page = resources.files(__package__).joinpath("join.html").read_text("utf-8")
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def create_app(
    durable: DurableGraph[Any],
    config: ServiceConfig | None = None,
    *,
    static_dir: str | None = None,
    replay_store: Any = None,
) -> Starlette:
    """The call service for ``durable`` (which must be running: ``async with durable``).

    ``static_dir``: also serve that folder's files under ``/static/`` (a frontend on the
    same origin as the API).

    ``replay_store``: where verified OpenAI webhook ids are claimed (a
    ``masquerade_openai.ReplayStore``). By default a :class:`DatabaseReplayStore` in the
    runs database, so a webhook replayed to any ``serve`` process of the deployment is
    refused.
    """
    service = _Service(durable, config or ServiceConfig())
    service.webhook_store = replay_store

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        secret = await anyio.to_thread.run_sync(load_service_secret, durable.database_url)
        service.tokens = ClientTokens(secret)
        if service.webhook_store is None and durable.run_log is not None:
            store = DatabaseReplayStore(durable.run_log.engine)
            await anyio.to_thread.run_sync(store.create)
            service.webhook_store = store
        yield

    routes: list[BaseRoute] = [
        Route("/v1/runs", guarded(service.create_run), methods=["POST"]),
        Route("/v1/runs/{run_id}", guarded(service.get_run), methods=["GET"]),
        Route(
            "/v1/runs/{run_id}/credentials",
            with_cors(guarded(service.credentials)),
            methods=["GET", "OPTIONS"],
        ),
        Route(
            "/v1/runs/{run_id}/events",
            with_cors(guarded(service.events)),
            methods=["GET", "OPTIONS"],
        ),
        Route("/v1/runs/{run_id}/cancel", guarded(service.cancel), methods=["POST"]),
        Route(
            "/v1/runs/{run_id}/sdp", with_cors(guarded(service.sdp)), methods=["POST", "OPTIONS"]
        ),
        Route("/v1/webhooks/openai", guarded(service.webhook), methods=["POST"]),
        Route("/healthz", guarded(service.healthz), methods=["GET"]),
        Route("/readyz", guarded(service.readyz), methods=["GET"]),
        Route("/openapi.json", guarded(service.openapi), methods=["GET"]),
        Route("/join", guarded(service.join_page), methods=["GET"]),
    ]
    if static_dir is not None:
        from starlette.routing import Mount
        from starlette.staticfiles import StaticFiles

        routes.append(Mount("/static", StaticFiles(directory=static_dir, html=True)))

    async def not_found(request: Request, exc: Exception) -> Response:
        return ApiError(404, "not_found", f"no route {request.url.path}").response()

    async def not_allowed(request: Request, exc: Exception) -> Response:
        message = f"{request.method} is not allowed here"
        return ApiError(405, "method_not_allowed", message).response()

    async def failed(request: Request, exc: Exception) -> Response:
        logger.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return ApiError(503, "unavailable", "the service could not answer").response()

    handlers: Mapping[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        404: not_found,
        405: not_allowed,
        500: failed,
    }
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=dict(handlers))
    app.state.service = service
    return app
