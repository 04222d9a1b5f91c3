"""Whole sessions on the emulator: provisioning, the room, tools, events, ending, result."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from masquerade import Host, SessionRequest
from masquerade.events import BaseEvent
from masquerade_runway import RunwayProvider
from masquerade_runway.emulator import RunwayEmulator

from .tools_for_tests import lookup_order, show_order

pytestmark = pytest.mark.anyio

FULL_SCRIPT: list[dict[str, Any]] = [
    {"say": "Hi! What is your order number?"},
    {"say": "It is A1001.", "role": "user"},
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"client_event": "show_order", "args": {"order_id": "A1001"}},
    {"say": "It has shipped and arrives tomorrow."},
    {"say": "Thanks, bye!", "role": "user"},
    {"client_event": "goodbye"},
]


async def run(
    host: Host,
    request: SessionRequest,
    *,
    end_on: Callable[[BaseEvent], bool] | None = None,
) -> tuple[Any, list[BaseEvent]]:
    """Run a session; end it (END_CALL) at the first event ``end_on`` accepts."""
    events: list[BaseEvent] = []
    async with host.session(request) as session:
        async for event in session.events():
            events.append(event)
            if end_on is not None and end_on(event):
                session.end("done")
    assert session.result is not None
    return session, events


def of(events: Sequence[BaseEvent], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


def goodbye(event: BaseEvent) -> bool:
    return event.type == "client_event" and getattr(event, "name", None) == "goodbye"


async def test_full_lifecycle_with_tools_events_and_final_conversation(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    # Queued long enough for a poll to see it on a loaded machine (50 ms could pass first).
    emulator.plan_next(queued=0.5, provisioning=0.03, script=FULL_SCRIPT)
    request = SessionRequest(
        provider="runway",
        avatar="cooking-teacher",
        personality="You are a concierge.",
        start_script="Welcome!",
        max_duration=120,
        tools=[lookup_order, show_order],
    )
    async with host_for(provider) as host:
        session, events = await run(host, request, end_on=goodbye)

    # provisioning: queued, then not queued, then READY; credentials for the browser SDK
    statuses = [(e.provider_status, e.queued) for e in of(events, "status") if e.provider_status]
    assert ("NOT_READY", True) in statuses
    assert statuses[-1] == ("READY", False)
    (ready,) = of(events, "ready")
    revealed = ready.credentials.reveal()
    assert revealed["sessionId"] == session.provider_session_id
    assert revealed["sessionKey"] == emulator.core.sessions[session.provider_session_id].session_key
    assert revealed["sessionKey"] not in repr(ready)

    # the request reached Runway in its wire form
    body = emulator.session(session.provider_session_id)["body"]
    assert body["avatar"] == {"type": "runway-preset", "presetId": "cooking-teacher"}
    assert body["personality"] == "You are a concierge."
    assert body["startScript"] == "Welcome!"
    assert body["maxDuration"] == 120
    assert [t["type"] for t in body["tools"]] == ["backend_rpc", "client_event"]

    # the tool call was answered over the room
    (call,) = of(events, "tool.call")
    (answer,) = of(events, "tool.result")
    assert call.arguments == {"order_id": "A1001"}
    assert answer.output == {"order_id": "A1001", "status": "shipped", "eta": "tomorrow"}

    # client events (the acknowledgements are not events), transcripts
    assert [(e.name, e.args) for e in of(events, "client_event")] == [
        ("show_order", {"order_id": "A1001"}),
        ("goodbye", {}),
    ]
    done = [(e.role, e.text) for e in of(events, "transcript.done")]
    assert ("assistant", "Hi! What is your order number?") in done
    assert ("user", "It is A1001.") in done
    assert ("assistant", "It has shipped and arrives tomorrow.") in done
    assert ("user", "Thanks, bye!") in done  # flushed at the end
    first_turn = [
        e.text for e in of(events, "transcript.delta") if e.turn == 0 and e.role == "assistant"
    ]
    deltas = "".join(first_turn)
    assert deltas == "Hi! What is your order number?"

    # ended with END_CALL from the backend: COMPLETED, no DELETE
    result = session.result
    snapshot = emulator.session(session.provider_session_id)
    assert snapshot["status"] == "COMPLETED"
    assert snapshot["ended_by"].startswith("backend:")
    assert (snapshot["ended_by"], {"type": "END_CALL"}) in snapshot["data"]
    assert result.outcome == "completed"
    assert provider.sessions[-1].ended_with == "end_call"

    # the final conversation: transcript turns with the tool call and its result
    texts = [(t.role, t.text) for t in result.transcript if t.text]
    assert texts[:2] == [("assistant", "Hi! What is your order number?"), ("user", "It is A1001.")]
    tool_turn = next(t for t in result.transcript if t.tool_results)
    assert tool_turn.tool_calls[0]["name"] == "lookup_order"
    assert tool_turn.tool_calls[0]["arguments"] == {"order_id": "A1001"}
    assert tool_turn.tool_results[0]["result"] == answer.output
    assert result.recording_url
    assert ".mp4?expires=" in result.recording_url
    assert result.tool_calls[0].output == answer.output
    assert of(events, "ended")[0].outcome == "completed"


async def test_consume_option_hands_out_livekit_credentials_once(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(script=[{"say": "Hello"}, {"client_event": "goodbye"}])
    request = SessionRequest(provider="runway", avatar="tennis-coach", options={"consume": True})
    async with host_for(provider) as host:
        session, events = await run(host, request, end_on=goodbye)
    (ready,) = of(events, "ready")
    credentials = ready.credentials
    assert credentials.kind == "livekit"
    assert set(credentials.public) == {"sessionId", "url", "roomName"}
    assert credentials.public["url"].startswith("ws://127.0.0.1:")
    token = credentials.secrets["token"].get_secret_value()
    assert token in emulator.core.tokens
    assert emulator.session(session.provider_session_id)["consumed"] is True
    consume = f"/v1/realtime_sessions/{session.provider_session_id}/consume"
    assert emulator.count("POST", consume) == 1
    assert session.result.outcome == "completed"


async def test_user_hangup_ends_completed_without_delete(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(script=[{"say": "Bye now"}, {"hangup": True}])
    request = SessionRequest(provider="runway", avatar="influencer")
    async with host_for(provider) as host:
        result = await host.run_session(request)
    sid = result.provider_session_id
    assert result.outcome == "completed"
    assert emulator.session(sid)["ended_by"] == "user"
    assert emulator.count("DELETE", f"/v1/realtime_sessions/{sid}") == 0
    assert provider.sessions[-1].ended_with == "none"
    assert [t.text for t in result.transcript] == ["Bye now"]


async def test_end_call_versus_delete_when_the_room_is_gone(
    emulator: RunwayEmulator, host_for: Callable[..., Host]
) -> None:
    # A room that cannot publish END_CALL (it was closed under us) falls back to DELETE.
    provider = emulator.provider(end_grace=1.0, result_wait=2.0)
    emulator.plan_next(script=[{"say": "Hello"}, {"client_event": "goodbye"}])
    request = SessionRequest(provider="runway", avatar="human-resource")

    async with host_for(provider) as host, host.session(request) as session:
        async for event in session.events():
            if goodbye(event):
                room = provider.sessions[-1]._room
                assert room is not None
                await room.disconnect()  # the room is gone: END_CALL cannot be sent
                session.end("done")
    sid = session.provider_session_id
    assert emulator.session(sid)["status"] == "CANCELLED"
    assert emulator.session(sid)["ended_by"] == "api"
    assert provider.sessions[-1].ended_with == "delete"
    assert session.result.outcome == "cancelled"


async def test_session_limit_closes_the_room_and_completes(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    # Runway cuts sessions near 300 s whatever maxDuration says; the emulator's limit is
    # shortened here. The room closes, connect returns, nothing is cancelled.
    emulator.plan_next(script=[{"say": "Talking until the limit"}], practical_limit=0.3)
    request = SessionRequest(provider="runway", avatar="cat-character", max_duration=60)
    async with host_for(provider) as host:
        result = await host.run_session(request)
    assert result.outcome == "completed"
    assert emulator.session(result.provider_session_id)["status"] == "COMPLETED"
    assert emulator.session(result.provider_session_id)["ended_by"] is None
    assert [t.text for t in result.transcript] == ["Talking until the limit"]


async def test_local_max_duration_sends_end_call(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(script=[{"say": "Hello"}])
    # The deadline must fire after the backend has joined the room (END_CALL needs the
    # room; a loaded machine can take over a second to join) and before Runway's own limit:
    # Runway gets ceil(2.5) = 3 s, counted from the join, so the local 2.5 s comes first.
    request = SessionRequest(provider="runway", avatar="cat-character", max_duration=2.5)
    async with host_for(provider) as host:
        result = await host.run_session(request)
    assert result.reason == "deadline"
    assert result.outcome == "completed"
    assert emulator.session(result.provider_session_id)["ended_by"].startswith("backend:")


async def test_backend_false_only_follows_the_status(
    emulator: RunwayEmulator, host_for: Callable[..., Host]
) -> None:
    provider = emulator.provider(monitor_interval=0.02, result_wait=2.0)
    emulator.plan_next(script=[{"say": "Nobody listens"}, {"hangup": True}], start_on="join")
    request = SessionRequest(provider="runway", avatar="influencer", options={"backend": False})

    async def frontend_joins(event: BaseEvent) -> None:
        if event.type == "ready":
            # The frontend consumes and joins; the backend never connects.
            from masquerade_runway import EmulatorRoom, RunwayClient

            creds = event.credentials.reveal()  # type: ignore[attr-defined]
            async with RunwayClient(emulator.api_key, base_url=emulator.base_url) as c:
                room_creds = await c.consume_realtime_session(
                    creds["sessionId"], creds["sessionKey"]
                )
            room = EmulatorRoom()
            await room.connect(room_creds.url, room_creds.token.get_secret_value())
            await room.wait_closed()

    async with host_for(provider) as host, host.session(request) as session:
        async for event in session.events():
            if event.type == "ready":
                session.spawn(frontend_joins, event)
    result = session.result
    assert result.outcome == "completed"
    connect = f"/v1/realtime_sessions/{result.provider_session_id}/connect_backend"
    assert emulator.count("POST", connect) == 0
    assert [t.text for t in result.transcript] == ["Nobody listens"]


async def test_custom_avatar(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    avatar_id = emulator.add_avatar("Concierge")
    emulator.plan_next(script=[{"hangup": True}])
    async with host_for(provider) as host:
        result = await host.run_session(SessionRequest(provider="runway", avatar=avatar_id))
    body = emulator.session(result.provider_session_id)["body"]
    assert body["avatar"] == {"type": "custom", "avatarId": avatar_id}
    assert result.outcome == "completed"


async def test_no_secret_is_logged(
    emulator: RunwayEmulator,
    provider: RunwayProvider,
    host_for: Callable[..., Host],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.plan_next(script=FULL_SCRIPT)
    emulator.inject(status=503, method="GET", path="/v1/realtime_sessions/", times=1)
    caplog.set_level(logging.DEBUG)
    request = SessionRequest(
        provider="runway", avatar="cooking-teacher", tools=[lookup_order, show_order],
        options={"consume": True},
    )
    async with host_for(provider) as host:
        session, events = await run(host, request, end_on=goodbye)
    sid = session.provider_session_id
    secrets = [emulator.api_key, emulator.core.sessions[sid].session_key]
    secrets += [t for t, grant in emulator.core.tokens.items() if grant[0] == sid]
    assert len(secrets) >= 4  # key, session key, frontend token, backend token
    logged = "\n".join(r.getMessage() for r in caplog.records)
    shown = logged + "\n".join(repr(e) for e in events) + repr(provider) + repr(session)
    shown += session.result.model_dump_json()
    assert "GET" in logged  # the client did log its requests
    for secret in secrets:
        assert secret
        assert secret not in shown
