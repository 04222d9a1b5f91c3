"""Calls longer than Runway's cap: ``options={"long_call": "end" | "continue"}``, per node."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from masquerade import (
    END,
    START,
    AvatarNode,
    ConfigurationError,
    Graph,
    Host,
    JoinCredentials,
    SessionRequest,
    SessionResult,
)
from masquerade.events import BaseEvent
from masquerade_runway import RunwayProvider
from masquerade_runway.emulator import RunwayEmulator

pytestmark = pytest.mark.anyio

#: Runway's cap made short: the policy acts one second before a two-second cap.
SHORT_CAP: dict[str, Any] = {"call_cap": 2.0, "cap_margin": 1.0}


async def run(host: Host, request: SessionRequest) -> tuple[SessionResult, list[BaseEvent]]:
    events: list[BaseEvent] = []
    async with host.session(request) as session:
        async for event in session.events():
            events.append(event)
    assert session.result is not None
    return session.result, events


def long_call_events(events: list[BaseEvent]) -> list[dict[str, Any]]:
    return [
        e.payload  # type: ignore[attr-defined]
        for e in events
        if e.type == "provider" and e.name == "long_call"  # type: ignore[attr-defined]
    ]


async def test_end_before_the_cap(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(script=[{"say": "This will take a while."}])  # never hangs up
    request = SessionRequest(
        provider="runway", avatar="influencer", options={"long_call": "end", **SHORT_CAP}
    )
    async with host_for(provider) as host:
        result, events = await run(host, request)
    assert long_call_events(events) == [
        {"action": "end", "session_id": result.provider_session_id, "after_s": 1.0}
    ]
    assert result.outcome == "completed"
    assert result.extra["long_call"] == "ended_before_cap"
    sid = result.provider_session_id
    assert emulator.session(sid)["ended_by"].startswith("backend:")  # END_CALL, not DELETE
    assert emulator.count("DELETE", f"/v1/realtime_sessions/{sid}") == 0
    assert [t.text for t in result.transcript] == ["This will take a while."]


class Call(BaseModel):
    call: SessionResult | None = None
    joined: list[str] = []


async def test_continue_in_a_new_session_from_an_avatar_node(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(script=[{"say": "Part one."}, {"say": "Go on.", "role": "user"}])
    emulator.plan_next(script=[{"say": "Part two."}, {"hangup": True}])
    frontends: list[JoinCredentials] = []
    node = AvatarNode(
        "runway",
        avatar="influencer",
        personality="You are a storyteller.",
        options={"long_call": "continue", **SHORT_CAP, "continue_script": "Where were we?"},
        on_ready=frontends.append,  # called again with the next session's credentials
        output_key="call",
    )
    graph = Graph(Call).add_node("call", node).add_edge(START, "call").add_edge("call", END)
    async with host_for(provider) as host:
        final = await graph.run(Call(), host=host)
    result = final.call
    assert result is not None
    first, second = (c.public["sessionId"] for c in frontends)
    assert result.extra["segments"] == [first, second]
    assert result.extra["long_call"] == "continued"
    assert [t.text for t in result.transcript if t.text] == ["Part one.", "Go on.", "Part two."]
    assert result.outcome == "completed"
    assert len(result.extra["recording_urls"]) == 2
    # The first session ended with END_CALL once the second was ready.
    assert emulator.session(first)["status"] == "COMPLETED"
    assert emulator.session(first)["ended_by"].startswith("backend:")
    body = emulator.session(second)["body"]
    assert body["personality"].startswith("You are a storyteller.")
    assert "assistant: Part one.\nuser: Go on." in body["personality"]
    assert body["startScript"] == "Where were we?"


async def test_continue_falls_back_to_ending_when_no_new_session_starts(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(script=[{"say": "Hello."}])
    request = SessionRequest(
        provider="runway", avatar="influencer", options={"long_call": "continue", **SHORT_CAP}
    )
    events: list[BaseEvent] = []
    async with host_for(provider) as host, host.session(request) as session:
        async for event in session.events():
            events.append(event)
            if event.type == "ready":
                # The account is at its daily limit by the time the call needs a new session.
                emulator.set_account(daily=0)
    emulator.set_account()
    result = session.result
    assert result is not None
    errors = [e for e in events if e.type == "error"]
    assert [e.code for e in errors] == ["long_call_continue_failed"]  # type: ignore[attr-defined]
    assert "429" in errors[0].message  # type: ignore[attr-defined]
    assert long_call_events(events)[-1]["action"] == "end"
    assert result.outcome == "completed"
    assert result.extra["long_call"] == "ended_before_cap"
    assert "segments" not in result.extra


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"long_call": "later"}, "'none', 'end' or 'continue'"),
        ({"long_call": "end", "call_cap": 10, "cap_margin": 10}, "less than call_cap"),
        ({"long_call": "end", "backend": False}, "needs the backend"),
    ],
)
async def test_a_bad_policy_is_refused_before_a_session_is_created(
    emulator: RunwayEmulator,
    provider: RunwayProvider,
    options: dict[str, Any],
    problem: str,
) -> None:
    created = len(emulator.session_ids)
    with pytest.raises(ConfigurationError, match=problem):
        await provider.create(
            SessionRequest(provider="runway", avatar="influencer", options=options)
        )
    assert len(emulator.session_ids) == created
