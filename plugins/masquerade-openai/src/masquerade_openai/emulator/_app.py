"""The emulator's request handling: authentication, REST routes, websocket sessions.

:class:`EmulatorApp` is what the emulator serves on its one port (through
:class:`._wire.WireServer`): it checks the API key, routes REST requests (call control in
:mod:`._calls`), and starts a :class:`._realtime.RealtimeServerSession` for each accepted
websocket. It runs on the emulator's asyncio loop.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from ._calls import CallDesk, CallRecord, api_error
from ._realtime import ConnectionRecord, RealtimeServerSession
from ._script import EmulatorScript
from ._wire import HttpRequest, HttpResponse, WireServer, WsConnection, json_response

__all__ = ["EmulatorApp"]

_CALL_PATH = re.compile(r"^/v1/realtime/calls/([^/]+)/(accept|reject|hangup|refer)$")
_BAD_KEY = ("Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.")


class EmulatorApp:
    """The emulator's state and request handling (runs on the emulator's loop)."""

    def __init__(self, api_key: str, script: EmulatorScript, webhook_secret: str) -> None:
        self.api_key = api_key
        self.script = script
        self.connections: list[ConnectionRecord] = []
        self.sessions: list[RealtimeServerSession] = []
        self.desk = CallDesk(webhook_secret)
        self.http_requests: list[tuple[str, str]] = []
        self.server = WireServer(http=self.http, authorize_ws=self.authorize,
                                 websocket=self.websocket)

    @property
    def calls(self) -> dict[str, CallRecord]:
        return self.desk.calls

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        expected = f"Bearer {self.api_key}"
        return secrets.compare_digest(headers.get("authorization", ""), expected)

    # ------------------------------------------------------------ HTTP
    async def http(self, request: HttpRequest) -> HttpResponse:
        self.http_requests.append((request.method, request.path))
        if not self._authorized(request.headers):
            return json_response(401, api_error(_BAD_KEY, "invalid_api_key"))
        match = _CALL_PATH.match(request.path)
        if match is None:
            return json_response(404, api_error(f"Unknown path {request.path}", "not_found"))
        if request.method != "POST":
            return json_response(405, api_error("Method not allowed", "method_not_allowed"))
        try:
            body = request.json() if request.body else None
        except ValueError:
            return json_response(400, api_error("The body is not valid JSON.", "invalid_json"))
        return await self.desk.control(match.group(1), match.group(2), body)

    # ------------------------------------------------------------ websocket
    def authorize(self, request: HttpRequest) -> HttpResponse | None:
        if request.path.rstrip("/") != "/v1/realtime":
            return json_response(404, api_error(f"Unknown path {request.path}", "not_found"))
        if not self._authorized(request.headers):
            return json_response(401, api_error(_BAD_KEY, "invalid_api_key"))
        model, call_id = request.query.get("model"), request.query.get("call_id")
        if model and call_id:
            return json_response(400, api_error("Specify either 'model' or 'call_id', not both.",
                                                "invalid_request_error"))
        if not model and not call_id:
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
