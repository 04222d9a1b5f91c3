"""Emulated calls: SIP calls that ring with a signed webhook, WebRTC calls created from an
SDP offer, and their control endpoints.

:class:`CallDesk` keeps every call by id. It answers ``POST /v1/realtime/calls`` (a WebRTC
offer in, an SDP answer and a ``Location`` header out; media is not emulated) and ``POST
/v1/realtime/calls/{call_id}/accept | reject | hangup | refer`` the way the service does
(a call that is gone answers 404). Sessions attached to a call by ``call_id`` (the
sideband) are closed when the call ends.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._sdp import check_sdp
from .._webhooks import sign_webhook
from ._sdp import answer_for
from ._wire import HttpResponse, json_response

if TYPE_CHECKING:
    from ._realtime import RealtimeServerSession

__all__ = ["CallRecord", "CallDesk", "api_error"]


def api_error(message: str, code: str | None, *, param: str | None = None,
              kind: str = "invalid_request_error") -> dict[str, Any]:
    """An error body as the API sends it."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass
class CallRecord:
    """One emulated call (``kind`` ``"sip"`` or ``"webrtc"``).

    A SIP call's ``state`` goes ``incoming`` -> ``accepted`` | ``rejected``; a WebRTC call
    starts ``accepted``. An accepted call ends as ``ended`` (hangup, by either side) or
    ``referred`` (transferred). ``accept_config`` is the session configuration the call was
    accepted (SIP) or created (WebRTC) with; ``offer`` and ``answer`` are a WebRTC call's
    SDP.
    """

    call_id: str
    kind: str = "sip"
    offer: str | None = None
    answer: str | None = None
    sip_headers: list[dict[str, str]] = field(default_factory=list)
    state: str = "incoming"
    accept_config: dict[str, Any] | None = None
    reject_status: int | None = None
    refer_target: str | None = None
    hung_up_by: str | None = None
    sessions: list[RealtimeServerSession] = field(default_factory=list)


def _gone(call_id: str, what: str) -> HttpResponse:
    return json_response(404, api_error(f"Call '{call_id}' {what}.", "call_not_found"))


class CallDesk:
    """Every emulated call, and the endpoints that control them."""

    def __init__(self, webhook_secret: str) -> None:
        self.webhook_secret = webhook_secret
        self.calls: dict[str, CallRecord] = {}

    def new_call(self, sip_headers: Mapping[str, str] | None = None) -> CallRecord:
        """Register a ringing SIP call."""
        call_id = f"rtc_{uuid.uuid4().hex[:24]}"
        headers = [{"name": k, "value": v} for k, v in (sip_headers or {
            "From": "\"Caller\" <sip:+14155550100@example.com>;tag=emu",
            "To": "<sip:+14155550199@sip.api.openai.com>",
            "Call-ID": f"{uuid.uuid4().hex}@emulator",
        }).items()]
        call = CallRecord(call_id=call_id, sip_headers=headers)
        self.calls[call_id] = call
        return call

    def create_webrtc(self, sdp: str, config: dict[str, Any]) -> HttpResponse:
        """``POST /v1/realtime/calls``: a WebRTC call from an SDP offer (201, the answer
        as ``application/sdp``, the call's path in ``Location``)."""
        try:
            check_sdp(sdp, "offer")
        except Exception as exc:
            return json_response(400, api_error(str(exc), "invalid_offer", param="sdp"))
        if config.get("type", "realtime") != "realtime":
            return json_response(400, api_error("Invalid value for 'session.type'.",
                                                "invalid_value", param="session.type"))
        call_id = f"rtc_{uuid.uuid4().hex[:24]}"
        answer = answer_for(sdp)
        self.calls[call_id] = CallRecord(
            call_id=call_id, kind="webrtc", state="accepted", offer=sdp, answer=answer,
            accept_config={k: v for k, v in config.items() if k != "type"},
        )
        return HttpResponse(201, answer.encode(), {
            "Content-Type": "application/sdp",
            "Location": f"/v1/realtime/calls/{call_id}",
        })

    def webhook_request(
        self, call: CallRecord, *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and signed headers of the call's ``realtime.call.incoming`` webhook."""
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

    async def end_call(self, call: CallRecord, state: str, *, by: str) -> None:
        call.state = state
        call.hung_up_by = by
        for session in list(call.sessions):
            session.conn.start_close(1000, "call ended")

    async def control(self, call_id: str, action: str, body: Any) -> HttpResponse:
        """``POST /v1/realtime/calls/{call_id}/{action}``."""
        call = self.calls.get(call_id)
        if call is None:
            return _gone(call_id, "not found")
        if action == "accept":
            if call.state != "incoming":
                return _gone(call_id, "is no longer ringing")
            if not isinstance(body, dict) or body.get("type") != "realtime":
                return json_response(400, api_error("Missing required parameter: 'type'.",
                                                    "missing_required_parameter", param="type"))
            call.state = "accepted"
            call.accept_config = {k: v for k, v in body.items() if k != "type"}
            return json_response(200)
        if action == "reject":
            if call.state != "incoming":
                return _gone(call_id, "is no longer ringing")
            status = (body or {}).get("status_code", 603) if isinstance(body, dict) else 603
            call.state = "rejected"
            call.reject_status = int(status)
            return json_response(200)
        if call.state not in ("accepted", "incoming"):
            return _gone(call_id, "has ended")
        if action == "hangup":
            await self.end_call(call, "ended", by="server")
            return json_response(200)
        target = body.get("target_uri") if isinstance(body, dict) else None
        if not isinstance(target, str) or not target:
            return json_response(400, api_error("Missing required parameter: 'target_uri'.",
                                                "missing_required_parameter",
                                                param="target_uri"))
        call.refer_target = target
        await self.end_call(call, "referred", by="server")
        return json_response(200)
