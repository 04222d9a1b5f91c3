"""The emulator's request handling: authentication, REST routes, websocket sessions.

:class:`EmulatorApp` is what the emulator serves on its one port (through
:class:`._wire.WireServer`). It authenticates each request with the API key or a live
ephemeral key (:mod:`._secrets`), given as ``Authorization: Bearer`` or, for websockets
from browsers, as the subprotocol ``openai-insecure-api-key.<key>``. It routes the REST
calls (client secrets, WebRTC call creation and call control in :mod:`._calls`) and starts
a :class:`._realtime.RealtimeServerSession` for each accepted websocket. It runs on the
emulator's asyncio loop.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._calls import CallDesk, CallRecord, api_error
from ._realtime import ConnectionRecord, RealtimeServerSession
from ._script import EmulatorScript
from ._secrets import ClientSecretRecord, SecretStore
from ._wire import HttpRequest, HttpResponse, WireServer, WsConnection, json_response

__all__ = ["EmulatorApp", "Grant"]

_CALL_PATH = re.compile(r"^/v1/realtime/calls/([^/]+)/(accept|reject|hangup|refer)$")
_KEY_PROTOCOL = "openai-insecure-api-key."
_BAD_KEY = ("Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.")


@dataclass(frozen=True)
class Grant:
    """Who a request is from: the API key holder, or a frontend with an ephemeral key."""

    secret: ClientSecretRecord | None = None


def presented_key(headers: dict[str, str]) -> str:
    """The key a request presents: the bearer token, else the key subprotocol."""
    auth = headers.get("authorization", "")
    if auth.startswith("Bearer "):
        return auth[len("Bearer "):].strip()
    for offered in headers.get("sec-websocket-protocol", "").split(","):
        offered = offered.strip()
        if offered.startswith(_KEY_PROTOCOL):
            return offered[len(_KEY_PROTOCOL):]
    return ""


def _unauthorized() -> HttpResponse:
    return json_response(401, api_error(_BAD_KEY, "invalid_api_key"))


def _not_found(path: str) -> HttpResponse:
    return json_response(404, api_error(f"Unknown path {path}", "not_found"))


class EmulatorApp:
    """The emulator's state and request handling (runs on the emulator's loop)."""

    def __init__(self, api_key: str, script: EmulatorScript, webhook_secret: str) -> None:
        self.api_key = api_key
        self.script = script
        self.connections: list[ConnectionRecord] = []
        self.sessions: list[RealtimeServerSession] = []
        self.desk = CallDesk(webhook_secret)
        self.keys = SecretStore()
        #: How a websocket with an expired ephemeral key is refused: ``"http"`` (401 with
        #: an error body, before the upgrade) or ``"event"`` (the upgrade is accepted, then
        #: an ``error`` event and a close), the two answers a client must handle.
        self.expired_key_refusal = "http"
        self.http_requests: list[tuple[str, str]] = []
        self.server = WireServer(http=self.http, authorize_ws=self.authorize,
                                 websocket=self.websocket)

    @property
    def calls(self) -> dict[str, CallRecord]:
        return self.desk.calls

    def grant(self, headers: dict[str, str]) -> Grant | None:
        """The request's grant, or ``None`` when its key is wrong, unknown or expired."""
        key = presented_key(headers)
        if not key:
            return None
        if secrets.compare_digest(key.encode(), self.api_key.encode()):
            return Grant()
        found = self.keys.find(key)
        return Grant(secret=found) if found is not None else None

    # ------------------------------------------------------------ HTTP
    async def http(self, request: HttpRequest) -> HttpResponse:
        self.http_requests.append((request.method, request.path))
        grant = self.grant(request.headers)
        if grant is None:
            return _unauthorized()
        path = request.path.rstrip("/")
        if request.method != "POST":
            if path.startswith("/v1/realtime/"):
                return json_response(405, api_error("Method not allowed", "method_not_allowed"))
            return _not_found(request.path)
        if path == "/v1/realtime/calls":
            return self._create_call(request, grant)
        if grant.secret is not None:
            # An ephemeral key creates calls and opens sessions, nothing else.
            return _unauthorized()
        if path == "/v1/realtime/client_secrets":
            try:
                body = request.json() if request.body else None
            except ValueError:
                return json_response(400, api_error("The body is not valid JSON.",
                                                    "invalid_json"))
            return self.keys.mint(body)
        match = _CALL_PATH.match(path)
        if match is None:
            return _not_found(request.path)
        try:
            body = request.json() if request.body else None
        except ValueError:
            return json_response(400, api_error("The body is not valid JSON.", "invalid_json"))
        return await self.desk.control(match.group(1), match.group(2), body)

    def _create_call(self, request: HttpRequest, grant: Grant) -> HttpResponse:
        """``POST /v1/realtime/calls`` in its three shapes: a bare ``application/sdp``
        offer, multipart ``sdp`` + ``session`` (the unified interface), or JSON."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        config: Any = None
        try:
            if kind == "multipart/form-data":
                fields = parse_multipart(request)
                sdp = fields.get("sdp", "")
                config = json.loads(fields["session"]) if "session" in fields else None
            elif kind == "application/json":
                body = request.json()
                sdp = body.get("sdp", "") if isinstance(body, dict) else ""
                config = body.get("session") if isinstance(body, dict) else None
            else:
                sdp = request.body.decode("utf-8", "replace")
        except (ValueError, UnicodeDecodeError):
            return json_response(400, api_error("The request body could not be read.",
                                                "invalid_request_error"))
        if config is not None and not isinstance(config, dict):
            return json_response(400, api_error("'session' must be an object.",
                                                "invalid_value", param="session"))
        merged = dict(grant.secret.session) if grant.secret is not None else {}
        for key in ("id", "object", "expires_at"):
            merged.pop(key, None)
        merged.update(config or {})
        return self.desk.create_webrtc(sdp, merged)

    # ------------------------------------------------------------ websocket
    def authorize(self, request: HttpRequest) -> HttpResponse | None:
        if request.path.rstrip("/") != "/v1/realtime":
            return _not_found(request.path)
        grant = self.grant(request.headers)
        if grant is None:
            if self.expired_key_refusal == "event" and self.keys.is_expired(
                presented_key(request.headers)
            ):
                return None  # accepted: websocket() explains and closes
            return _unauthorized()
        model, call_id = request.query.get("model"), request.query.get("call_id")
        if model and call_id:
            return json_response(400, api_error("Specify either 'model' or 'call_id', not both.",
                                                "invalid_request_error"))
        if not model and not call_id and grant.secret is None:
            return json_response(400, api_error("Missing required parameter: 'model'.",
                                                "missing_required_parameter", param="model"))
        if call_id:
            call = self.calls.get(call_id)
            if call is None or call.state != "accepted":
                return json_response(404, api_error(f"Call '{call_id}' not found or not active.",
                                                    "call_not_found"))
        return None

    async def websocket(self, connection: WsConnection) -> None:
        query = dict(parse_qsl(urlsplit(connection.request.path).query))
        raw = {k.lower(): v for k, v in connection.request.headers.raw_items()}
        grant = self.grant(raw)
        headers = {k: v for k, v in raw.items() if k != "authorization"}
        if "sec-websocket-protocol" in headers:  # the key travels in a subprotocol
            headers["sec-websocket-protocol"] = ", ".join(
                p.strip() for p in headers["sec-websocket-protocol"].split(",")
                if not p.strip().startswith(_KEY_PROTOCOL)
            )
        record = ConnectionRecord(index=len(self.connections), query=query, headers=headers)
        self.connections.append(record)
        if grant is None:  # an expired ephemeral key, refused after the upgrade
            await _refuse(connection, record, "invalid_api_key", _BAD_KEY)
            return
        if headers.get("openai-beta", "").startswith("realtime="):
            # The beta protocol is switched off: the service accepts, explains, closes.
            await _refuse(connection, record, "beta_api_shape_disabled",
                          "The Realtime Beta API is no longer supported. Please use "
                          "/v1/realtime for the GA API.")
            return
        call = self.calls.get(query["call_id"]) if "call_id" in query else None
        preset = grant.secret.session if grant.secret is not None else None
        if grant.secret is not None:
            grant.secret.uses += 1
        model = query.get("model") or (preset or {}).get("model") or "gpt-realtime"
        session = RealtimeServerSession(connection, record, self.script, model=model, call=call,
                                        preset=preset)
        self.sessions.append(session)
        if call is not None:
            call.sessions.append(session)
        try:
            await session.run()
        finally:
            if call is not None and session in call.sessions:
                call.sessions.remove(session)


async def _refuse(connection: WsConnection, record: ConnectionRecord, code: str,
                  message: str) -> None:
    """Accepted, then refused: an ``error`` event and a close with code 4000."""
    connection.send_json({"type": "error", "event_id": f"event_{code}", "error": {
        "type": "invalid_request_error", "code": code, "message": message, "param": None,
        "event_id": None}})
    connection.start_close(4000, f"invalid_request_error.{code}")
    async for _ignored in connection.messages():  # until the client answers
        pass
    record.closed, record.close_code = True, 4000


def parse_multipart(request: HttpRequest) -> dict[str, str]:
    """The text fields of a ``multipart/form-data`` body (files are read as text too)."""
    header = request.headers.get("content-type", "")
    boundary = ""
    for param in header.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        raise ValueError("multipart body without a boundary")
    fields: dict[str, str] = {}
    for part in request.body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.partition(b"\r\n\r\n")
        match = re.search(rb'name="([^"]*)"', head)
        if match is None:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        fields[match.group(1).decode()] = content.decode("utf-8")
    return fields
