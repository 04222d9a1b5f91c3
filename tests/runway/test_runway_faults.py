"""Bad input and failures: every one is a clear error or event, the session ends through
its cancel path, and no second session is ever created."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from masquerade import Host, SessionRequest
from masquerade.events import BaseEvent
from masquerade_runway import RunwayProvider
from masquerade_runway.emulator import RunwayEmulator

from .tools_for_tests import lookup_order, slow_lookup

pytestmark = pytest.mark.anyio


async def run(host: Host, request: SessionRequest) -> tuple[Any, list[BaseEvent]]:
    events: list[BaseEvent] = []
    async with host.session(request) as session:
        async for event in session.events():
            events.append(event)
    return session.result, events


def creates(emulator: RunwayEmulator) -> int:
    return emulator.count("POST", "/v1/realtime_sessions") - sum(
        1 for r in emulator.requests if r.method == "POST" and r.path.count("/") > 2
    )


async def test_wrong_key_fails_clearly_and_creates_nothing(
    emulator: RunwayEmulator, host_for: Callable[..., Host]
) -> None:
    provider = RunwayProvider(api_key="key_" + "0" * 128, base_url=emulator.base_url)
    before = len(emulator.session_ids)
    async with host_for(provider) as host:
        result, _events = await run(host, SessionRequest(provider="runway", avatar="influencer"))
    assert result.outcome == "failed"
    assert "401" in (result.failure or "")
    assert "Invalid API key" in (result.failure or "")
    assert "0" * 128 not in (result.failure or "") + (result.error or "")
    assert len(emulator.session_ids) == before


async def test_missing_key_is_a_configuration_error(
    emulator: RunwayEmulator, host_for: Callable[..., Host], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    provider = RunwayProvider(base_url=emulator.base_url)
    async with host_for(provider) as host:
        result, _ = await run(host, SessionRequest(provider="runway", avatar="influencer"))
    assert result.outcome == "failed"
    assert "no Runway API key" in (result.failure or "")
    assert result.error is not None
    assert "ConfigurationError" in result.error


async def test_bad_request_from_runway_is_reported(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    before = len(emulator.session_ids)
    request = SessionRequest(provider="runway", avatar="not-an-avatar-we-know")
    async with host_for(provider) as host:
        result, _ = await run(host, request)
    assert result.outcome == "failed"
    assert "400" in (result.failure or "")
    assert "not found" in (result.failure or "")
    assert len(emulator.session_ids) == before


@pytest.mark.parametrize("status", [429, 503])
async def test_create_is_never_retried_once_sent(
    emulator: RunwayEmulator,
    provider: RunwayProvider,
    host_for: Callable[..., Host],
    status: int,
) -> None:
    emulator.inject(status=status, retry_after=0.01, method="POST",
                    path=r"^/v1/realtime_sessions$", times=3)
    before_posts = creates(emulator)
    async with host_for(provider) as host:
        result, _ = await run(host, SessionRequest(provider="runway", avatar="influencer"))
    assert result.outcome == "failed"
    assert str(status) in (result.failure or "")
    assert creates(emulator) - before_posts == 1  # sent once, never again


async def test_slow_create_times_out_and_is_not_resent(
    emulator: RunwayEmulator, host_for: Callable[..., Host]
) -> None:
    provider = emulator.provider(client_options={"timeout": 0.2, "retry_base": 0.01})
    emulator.inject(delay=0.6, method="POST", path=r"^/v1/realtime_sessions$")
    before_posts = creates(emulator)
    async with host_for(provider) as host:
        result, _ = await run(host, SessionRequest(provider="runway", avatar="influencer"))
    assert result.outcome == "failed"
    assert "did not answer" in (result.failure or "")
    assert creates(emulator) - before_posts == 1


async def test_429_and_5xx_bursts_while_polling_are_retried(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(script=[{"hangup": True}])
    emulator.inject(status=429, retry_after=0.02, method="GET", path="/v1/realtime_sessions/",
                    times=2)
    emulator.inject(status=502, method="GET", path="/v1/realtime_sessions/", times=2)
    async with host_for(provider) as host:
        result, _events = await run(host, SessionRequest(provider="runway", avatar="influencer"))
    assert result.outcome == "completed"
    sid = result.provider_session_id
    answers = [r.status for r in emulator.requests if r.path == f"/v1/realtime_sessions/{sid}"]
    assert answers[:4] == [429, 429, 502, 502]
    assert 200 in answers[4:]


async def test_queued_past_the_deadline_is_cancelled(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(queued=60)
    # Long enough for the create to be answered and polled (queued) on a loaded machine.
    request = SessionRequest(provider="runway", avatar="influencer", provisioning_timeout=1.5)
    async with host_for(provider) as host:
        result, events = await run(host, request)
    assert result.outcome == "failed"
    assert "queue" in (result.failure or "")
    snapshot = emulator.session(result.provider_session_id)
    assert snapshot["status"] == "CANCELLED"
    assert snapshot["ended_by"] == "api"
    assert any(e.type == "status" and getattr(e, "queued", False) for e in events)
    assert provider.sessions[-1].ended_with == "delete"


@pytest.mark.parametrize("fail_at", ["provisioning", "ready"])
async def test_failed_with_a_failure_code(
    emulator: RunwayEmulator,
    provider: RunwayProvider,
    host_for: Callable[..., Host],
    fail_at: str,
) -> None:
    emulator.plan_next(fail_code="INSUFFICIENT_CAPACITY", failure="no capacity",
                       fail_at=fail_at, fail_after=0.0, provisioning=0.03)
    async with host_for(provider) as host:
        result, events = await run(host, SessionRequest(provider="runway", avatar="influencer"))
    assert result.outcome == "failed"
    assert result.failure_code == "INSUFFICIENT_CAPACITY"
    assert "no capacity" in (result.failure or "")
    assert emulator.session(result.provider_session_id)["status"] == "FAILED"
    assert emulator.count("DELETE", f"/v1/realtime_sessions/{result.provider_session_id}") == 0
    assert events[-1].type == "ended"
    assert events[-1].failure_code == "INSUFFICIENT_CAPACITY"


async def test_failure_during_the_call(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(script=[{"say": "Hello"}, {"fail": "worker crashed", "code": "WORKER"}])
    async with host_for(provider) as host:
        result, _ = await run(host, SessionRequest(provider="runway", avatar="influencer"))
    assert result.outcome == "failed"
    assert result.failure_code == "WORKER"
    assert [t.text for t in result.transcript] == ["Hello"]


async def test_ready_without_a_session_key_is_a_clear_error(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(ready_without_key=True)
    async with host_for(provider) as host:
        result, events = await run(host, SessionRequest(provider="runway", avatar="influencer"))
    assert result.outcome == "failed"
    assert "READY without a sessionKey" in (result.failure or "")
    assert not any(e.type == "ready" for e in events)
    assert emulator.session(result.provider_session_id)["status"] == "CANCELLED"


async def test_rpc_from_a_non_worker_identity_is_refused(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(script=[
        {"tool": "lookup_order", "args": {"order_id": "A1001"}, "caller": "user:mallory"},
        {"tool": "lookup_order", "args": {"order_id": "A1001"}},
        {"hangup": True},
    ])
    request = SessionRequest(provider="runway", avatar="influencer", tools=[lookup_order])
    async with host_for(provider) as host:
        result, events = await run(host, request)
    refused = [e for e in events if e.type == "error" and e.code == "rpc_unauthorized"]
    assert len(refused) == 1
    assert "user:mallory" in refused[0].message
    assert not refused[0].fatal
    assert len([e for e in events if e.type == "tool.call"]) == 1  # only the worker's call ran
    results = [t.tool_results[0] for t in result.transcript if t.tool_results]
    assert results[0]["error"] == "Unauthorized caller: user:mallory"
    assert results[1]["result"]["status"] == "shipped"
    assert result.outcome == "completed"


async def test_malformed_and_bare_rpc_payloads(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(script=[
        {"tool": "lookup_order", "payload": "{not json"},
        {"tool": "lookup_order", "payload": "[1, 2]"},
        {"tool": "lookup_order", "args": {"order_id": "A1001"}, "bare": True},
        {"tool": "lookup_order", "args": {"order_id": "nope"}},
        {"tool": "lookup_order", "args": {"wrong": 1}},
        {"hangup": True},
    ])
    request = SessionRequest(provider="runway", avatar="influencer", tools=[lookup_order])
    async with host_for(provider) as host:
        result, events = await run(host, request)
    answers = [e for e in events if e.type == "tool.result"]
    assert len(answers) == 5  # every call got exactly one answer
    recorded = [t.tool_results[0] for t in result.transcript if t.tool_results]
    assert recorded[0]["error"]
    assert recorded[1]["error"]
    assert recorded[2]["result"] == {"order_id": "A1001", "status": "shipped", "eta": "tomorrow"}
    assert "no order nope" in recorded[3]["error"]  # the tool raised: its message
    assert recorded[4]["error"]  # arguments that do not fit the tool
    assert [a.ok for a in answers] == [False, False, True, False, False]
    assert result.outcome == "completed"


async def test_a_slow_tool_is_answered_before_the_worker_gives_up(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    # A 2 s wait leaves the reply the full 0.5 s margin for its trip back (under load).
    emulator.plan_next(script=[
        {"tool": "slow_lookup", "args": {"seconds": 2.6}, "timeout": 2.0},
        {"tool": "slow_lookup", "args": {"seconds": 0.01}},
        {"wait": 0.6},
        {"hangup": True},
    ])
    request = SessionRequest(provider="runway", avatar="influencer", tools=[slow_lookup])
    async with host_for(provider) as host:
        result, events = await run(host, request)
    recorded = [t.tool_results[0] for t in result.transcript if t.tool_results]
    # Our error reply, not the worker's own "Response timeout": answered in time.
    assert "did not answer within" in recorded[0]["error"]
    assert recorded[0]["durationMs"] < 2000
    assert recorded[1]["result"] == "waited 0.01"
    # The slow call was cancelled at the worker's deadline: its one recorded result is
    # the timeout the avatar was told, not a later success.
    answers = {e.call_id: e for e in events if e.type == "tool.result"}
    assert len(answers) == 2
    assert sorted(str(a.output) for a in answers.values()) == ["None", "waited 0.01"]
    [late] = [a for a in answers.values() if a.error]
    assert late.error_type == "timeout" and late.error == recorded[0]["error"]


async def test_unknown_and_malformed_data_messages_are_events(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(script=[
        {"data": {"type": "avatar_state", "state": "thinking"}},
        {"data": "definitely not json"},
        {"data": [1, 2, 3]},
        {"data": {"type": "transcription", "role": "robot", "turn": 0, "text": "x"}},
        {"data": {"type": "client_event", "args": {}}},
        {"client_event": "show_order", "args": {"order_id": "A1"}, "ack": True},
        {"hangup": True},
    ])
    async with host_for(provider) as host:
        result, events = await run(host, SessionRequest(provider="runway", avatar="influencer"))
    provider_events = [e for e in events if e.type == "provider"]
    assert [(e.name, e.payload.get("state")) for e in provider_events] == [
        ("avatar_state", "thinking")
    ]
    errors = [e for e in events if e.type == "error"]
    assert [e.code for e in errors] == ["malformed_message"] * 4
    assert not any(e.fatal for e in errors)
    assert errors[0].raw == "definitely not json"
    assert [e.name for e in events if e.type == "client_event"] == ["show_order"]
    assert result.outcome == "completed"


async def test_ending_before_ready_deletes_the_session(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(provisioning=30)
    request = SessionRequest(provider="runway", avatar="influencer")
    async with host_for(provider) as host, host.session(request) as s:
        async for event in s.events():
            if event.type == "status" and getattr(event, "provider_status", None):
                s.end("user went away")
    assert s.result.reason == "user went away"
    snapshot = emulator.session(s.provider_session_id)
    assert snapshot["status"] == "CANCELLED"
    assert snapshot["ended_by"] == "api"
    assert provider.sessions[-1].ended_with == "delete"


async def test_end_is_safe_when_the_session_is_already_gone(
    emulator: RunwayEmulator, provider: RunwayProvider
) -> None:
    created = await provider.create(SessionRequest(provider="runway", avatar="influencer"))
    await provider.client().delete_realtime_session(created.id)
    await created.end("cleanup")  # already CANCELLED: nothing else happens
    await created.end("again")  # and a second call is a no-op
    assert created.ended_with == "none"
    outcome = await created.result()
    assert outcome.outcome == "cancelled"
    assert outcome.transcript == []  # never ran: its conversation is empty
    assert outcome.extra["conversation_status"] == "ended"
