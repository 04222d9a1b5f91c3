"""SIP calls: signed webhooks, call control against the emulator, and a call end to end."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import masquerade_openai
from masquerade import ConfigurationError, Host, ProviderError, SessionRequest
from masquerade_openai import (
    OpenAIRealtimeProvider,
    RealtimeCalls,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)
from masquerade_openai.emulator import OpenAIRealtimeEmulator

from .helpers import collect, count, lookup_order, of, serve_webhooks

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = json.dumps({
    "id": "evt_1", "object": "event", "created_at": 1_700_000_000,
    "type": "realtime.call.incoming",
    "data": {"call_id": "rtc_123", "sip_headers": [{"name": "From", "value": "sip:+1@x"}]},
}).encode()


# ---------------------------------------------------------------- webhook verification
def test_valid_webhook_is_parsed() -> None:
    headers = sign_webhook(BODY, SECRET)
    event = verify_webhook(BODY, headers, SECRET)
    assert event.type == "realtime.call.incoming"
    assert event.call_id == "rtc_123"
    assert event.sip_headers == {"From": "sip:+1@x"}


def test_header_names_are_case_insensitive_and_any_signature_may_match() -> None:
    headers = sign_webhook(BODY, SECRET)
    other = sign_webhook(BODY, "whsec_" + base64.b64encode(b"x" * 32).decode(),
                         msg_id=headers["webhook-id"], timestamp=int(headers["webhook-timestamp"]))
    mixed = {
        "Webhook-Id": headers["webhook-id"],
        "WEBHOOK-TIMESTAMP": headers["webhook-timestamp"],
        # A rotated secret: the old and the new signature, space separated.
        "Webhook-Signature": f"{other['webhook-signature']} {headers['webhook-signature']}",
    }
    assert verify_webhook(BODY, mixed, SECRET).call_id == "rtc_123"


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda b, h: (b.replace(b"rtc_123", b"rtc_999"), h), "does not match"),
        (lambda b, h: (b, {**h, "webhook-id": "wh_other"}), "does not match"),
        (lambda b, h: (b, {**h, "webhook-signature": "v1,AAAA"}), "does not match"),
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-signature"}),
         "no webhook-signature header"),
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-timestamp"}),
         "no webhook-timestamp header"),
        (lambda b, h: (b, {**h, "webhook-timestamp": "yesterday"}), "not Unix seconds"),
        (lambda b, h: (b, {**h, "webhook-timestamp": str(int(time.time()) - 3600)}), "stale"),
        (lambda b, h: (b, {**h, "webhook-timestamp": str(int(time.time()) + 3600)}),
         "in the future"),
    ],
)
def test_tampered_missing_or_stale_webhooks_are_refused(tamper: Any, message: str) -> None:
    body, headers = tamper(BODY, sign_webhook(BODY, SECRET))
    with pytest.raises(WebhookVerificationError, match=message) as info:
        verify_webhook(body, headers, SECRET)
    assert SECRET not in str(info.value)
    assert SECRET[6:] not in str(info.value)
    assert info.value.hint


def test_wrong_secret_and_bad_secret_format() -> None:
    headers = sign_webhook(BODY, SECRET)
    wrong = "whsec_" + base64.b64encode(b"y" * 32).decode()
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(BODY, headers, wrong)
    with pytest.raises(WebhookVerificationError, match="not valid base64"):
        verify_webhook(BODY, headers, "whsec_%%%not-base64")
    with pytest.raises(WebhookVerificationError, match="empty"):
        verify_webhook(BODY, headers, "")


def test_event_type_is_checked_unless_disabled() -> None:
    body = json.dumps({"id": "evt_2", "type": "realtime.call.ended", "data": {}}).encode()
    headers = sign_webhook(body, SECRET)
    with pytest.raises(WebhookVerificationError, match=r"expected a realtime\.call\.incoming"):
        verify_webhook(body, headers, SECRET)
    assert verify_webhook(body, headers, SECRET, event_type=None).type == "realtime.call.ended"
    signed_junk = b"[1, 2, 3]"
    with pytest.raises(WebhookVerificationError, match="not an event object"):
        verify_webhook(signed_junk, sign_webhook(signed_junk, SECRET), SECRET)


def test_the_tolerance_boundary() -> None:
    headers = sign_webhook(BODY, SECRET, timestamp=1_000_000)
    assert verify_webhook(BODY, headers, SECRET, now=1_000_300).call_id == "rtc_123"
    with pytest.raises(WebhookVerificationError, match="stale"):
        verify_webhook(BODY, headers, SECRET, now=1_000_301)


# ---------------------------------------------------------------- call control
@pytest.mark.anyio
async def test_accept_reject_hangup_refer(emulator: OpenAIRealtimeEmulator) -> None:
    async with RealtimeCalls(api_key=emulator.api_key, base_url=emulator.base_url) as calls:
        ringing = emulator.new_call()
        assert await calls.accept(ringing, {"model": "gpt-realtime", "instructions": "Hi"})
        assert emulator.calls[ringing].state == "accepted"
        assert emulator.calls[ringing].accept_config == {"model": "gpt-realtime",
                                                         "instructions": "Hi"}
        await calls.refer(ringing, "tel:+14155550123")
        assert emulator.calls[ringing].state == "referred"
        assert emulator.calls[ringing].refer_target == "tel:+14155550123"

        declined = emulator.new_call()
        assert await calls.reject(declined, status_code=486)
        assert emulator.calls[declined].reject_status == 486
        default = emulator.new_call()
        assert await calls.reject(default)
        assert emulator.calls[default].reject_status == 603

        answered = emulator.new_call()
        assert await calls.accept(answered)
        assert await calls.hangup(answered) is True
        assert await calls.hangup(answered) is False  # already ended: not an error


@pytest.mark.anyio
async def test_accept_after_the_caller_left_is_a_clean_false(
    emulator: OpenAIRealtimeEmulator,
) -> None:
    async with RealtimeCalls(api_key=emulator.api_key, base_url=emulator.base_url) as calls:
        assert await calls.accept("rtc_does_not_exist") is False
        gone = emulator.new_call()
        emulator.caller_hangs_up(gone)
        assert await calls.accept(gone) is False


@pytest.mark.anyio
async def test_call_control_errors_are_clear(emulator: OpenAIRealtimeEmulator) -> None:
    async with RealtimeCalls(api_key="sk-wrong-key-0123456789", base_url=emulator.base_url) as bad:
        with pytest.raises(ProviderError) as info:
            await bad.accept(emulator.new_call())
        assert info.value.status_code == 401
        assert info.value.code == "invalid_api_key"
        assert "sk-wrong-key" not in str(info.value)
    async with RealtimeCalls(api_key=emulator.api_key, base_url=emulator.base_url) as calls:
        with pytest.raises(ConfigurationError, match="tel: or sip:"):
            await calls.refer(emulator.new_call(), "+14155550123")
        with pytest.raises(ConfigurationError, match="final error response"):
            await calls.reject(emulator.new_call(), status_code=200)
        with pytest.raises(ProviderError) as info:
            await calls.refer("rtc_nope", "sip:agent@example.com")
        assert info.value.status_code == 404
    async with RealtimeCalls(api_key=emulator.api_key, base_url="http://127.0.0.1:9/v1") as off:
        with pytest.raises(ProviderError) as info:
            await off.hangup("rtc_x")
        assert info.value.retryable


# ---------------------------------------------------------------- a call end to end
@pytest.mark.anyio
async def test_sip_call_end_to_end(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    """webhook -> verify -> accept -> session attached by call_id -> talk -> hangup."""
    provider = provider_for()
    calls = RealtimeCalls(api_key=emulator.api_key, base_url=emulator.base_url)
    finished: list[Any] = []
    transcripts: list[str] = []

    async with host_for(provider) as host, anyio.create_task_group() as tg:

        async def run_call(call_id: str) -> None:
            request = SessionRequest(provider="openai", tools=[lookup_order],
                                     options={"call_id": call_id})
            async with host.session(request) as session:
                rt = await masquerade_openai.wait_realtime(session)
                assert rt.call_id == call_id
                await rt.create_response(instructions="Say exactly: Thanks for calling!")
                await collect(session, count("response.done"))  # the greeting is over
                emulator_session_ready.set()
                events = await collect(session, count("response.done", 3))
                transcripts.extend(e.text for e in of(events, "transcript.done"))
                session.end()  # the cancel path hangs up the call
            finished.append(session.result)
            call_done.set()

        async def on_webhook(body: bytes, headers: dict[str, str]) -> int:
            try:
                event = masquerade_openai.verify_webhook(body, headers, emulator.webhook_secret)
            except WebhookVerificationError:
                return 400
            if await calls.accept(event.call_id, {"model": "gpt-realtime",
                                                  "instructions": "You answer the phone."}):
                tg.start_soon(run_call, event.call_id)
            return 200

        emulator_session_ready = anyio.Event()
        call_done = anyio.Event()
        url = await tg.start(serve_webhooks, on_webhook)
        call_id, status = await emulator.ring(url)
        assert status == 200
        await emulator_session_ready.wait()
        emulator.speak('call lookup_order {"order_id": "Z9"}')
        with anyio.move_on_after(10):
            await call_done.wait()
        tg.cancel_scope.cancel()
    assert finished, f"the call did not finish; it went: {emulator.connection().server_events}"
    await calls.aclose()

    [result] = finished
    assert result.outcome == "completed"
    assert result.tool_calls[0].name == "lookup_order"
    assert "Thanks for calling!" in transcripts
    assert 'call lookup_order {"order_id": "Z9"}' in transcripts
    call = emulator.calls[call_id]
    assert call.state == "ended"
    assert call.hung_up_by == "server"
    record = emulator.connection()
    assert record.query == {"call_id": call_id}
    # Attached to the call: the codec negotiated by the SIP leg is left alone.
    first_update = record.events_of("session.update")[0]["session"]
    assert "format" not in first_update["audio"]["input"]
    assert "format" not in first_update["audio"]["output"]
    assert ("POST", f"/v1/realtime/calls/{call_id}/hangup") in emulator.http_requests


@pytest.mark.anyio
async def test_a_forged_webhook_is_refused(emulator: OpenAIRealtimeEmulator) -> None:
    accepted: list[str] = []

    async def on_webhook(body: bytes, headers: dict[str, str]) -> int:
        try:
            event = verify_webhook(body, headers, "whsec_" + base64.b64encode(b"z" * 32).decode())
        except WebhookVerificationError:
            return 400
        accepted.append(event.call_id)
        return 200

    async with anyio.create_task_group() as tg:
        url = await tg.start(serve_webhooks, on_webhook)
        _, status = await emulator.ring(url)
        tg.cancel_scope.cancel()
    assert status == 400
    assert not accepted


@pytest.mark.anyio
async def test_caller_hangup_ends_the_session_cleanly(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    call_id = emulator.new_call()
    async with RealtimeCalls(api_key=emulator.api_key, base_url=emulator.base_url) as calls:
        assert await calls.accept(call_id)
    request = SessionRequest(provider="openai", options={"call_id": call_id})
    async with host_for(provider_for()) as host, host.session(request) as session:
        rt = await masquerade_openai.wait_realtime(session)
        emulator.caller_hangs_up(call_id)
        result = await session.wait()
    assert result.outcome == "completed"
    assert rt.close_code == 1000
    assert rt.reconnects == 0
    assert emulator.calls[call_id].hung_up_by == "caller"


@pytest.mark.anyio
async def test_attaching_to_an_unknown_call_fails_clearly(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    request = SessionRequest(provider="openai", options={"call_id": "rtc_unknown"})
    async with host_for(provider_for()) as host:
        result = await host.run_session(request)
    assert result.outcome == "failed"
    assert "HTTP 404" in (result.failure or "")


@pytest.mark.anyio
async def test_caller_talking_over_the_greeting_interrupts_it(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
) -> None:
    emulator.script = {"pace": 0.01}
    call_id = emulator.new_call()
    async with RealtimeCalls(api_key=emulator.api_key, base_url=emulator.base_url) as calls:
        assert await calls.accept(call_id)
    request = SessionRequest(provider="openai", options={"call_id": call_id})
    async with host_for(provider_for()) as host, host.session(request) as session:
        rt = await masquerade_openai.wait_realtime(session)
        # A greeting of ~3 s of paced audio: the caller always talks over it, even when
        # this test reads the first deltas late on a loaded machine.
        welcome = "Hello and welcome to the order line, how can I help?"
        await rt.create_response(
            instructions="Say exactly: " + " ".join([welcome] * 10)
        )
        await collect(session, count("audio.delta", 2))
        emulator.speak("is my parcel late")
        events = await collect(session, count("response.done", 2))
        session.end()
    first, second = of(events, "response.done")
    assert first.status == "cancelled"
    assert first.reason == "turn_detected"
    assert second.status == "completed"
    said = [e.text for e in of(events, "transcript.done") if e.role == "assistant"]
    assert said[-1] == "You said: is my parcel late"
