"""The ``integration`` option: your own agent speaks through the Runway avatar."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from masquerade import ConfigurationError, Host, SessionRequest
from masquerade_runway import (
    ElevenLabsIntegration,
    LiveKitIntegration,
    build_session_body,
)
from masquerade_runway.emulator import RunwayEmulator

from .tools_for_tests import lookup_order

ROOM = LiveKitIntegration(
    url="wss://my-project.livekit.cloud",
    token="lk_worker_token_abcdef123456",
    room_name="support-42",
    agent_identity="my-agent",
)


def test_integrations_are_typed_and_sent_in_wire_form() -> None:
    request = SessionRequest(provider="runway", avatar="influencer", options={"integration": ROOM})
    body = build_session_body(request)
    assert body["integration"] == {
        "type": "livekit",
        "url": "wss://my-project.livekit.cloud",
        "token": "lk_worker_token_abcdef123456",
        "roomName": "support-42",
        "agentIdentity": "my-agent",
    }
    assert "lk_worker_token" not in repr(ROOM)
    eleven = {"type": "elevenlabs", "signedUrl": "wss://api.elevenlabs.io/v1/convai?token=abc123"}
    options = {"integration": eleven}
    request = SessionRequest(provider="runway", avatar="influencer", options=options)
    assert build_session_body(request)["integration"] == eleven
    assert ElevenLabsIntegration(signed_url=eleven["signedUrl"]).to_wire() == eleven


@pytest.mark.parametrize(
    ("integration", "problem"),
    [
        ({"type": "livekit", "url": "wss://lk.example.com", "token": "t0123456789"}, "room_name"),
        ({"type": "livekit", "url": "http://lk.example.com", "token": "t", "roomName": "r"},
         "wss:// or https://"),
        ({"type": "elevenlabs", "signed_url": "wss://localhost/agent"}, "public host"),
        ({"type": "elevenlabs", "signed_url": "wss://10.0.0.8/agent"}, "public host"),
        ({"type": "zoom"}, "integration"),
        ("wss://lk.example.com", "mapping"),
    ],
)
def test_invalid_integrations_fail_before_anything_is_sent(
    integration: object, problem: str
) -> None:
    request = SessionRequest(
        provider="runway", avatar="influencer", options={"integration": integration}
    )
    with pytest.raises(ConfigurationError, match=problem):
        build_session_body(request)


def test_an_integration_takes_no_tools() -> None:
    request = SessionRequest(
        provider="runway", avatar="influencer", tools=[lookup_order], options={"integration": ROOM}
    )
    with pytest.raises(ConfigurationError, match="your own agent owns the conversation"):
        build_session_body(request, [{"type": "backend_rpc", "name": "x", "description": "d"}])


@pytest.mark.anyio
async def test_a_livekit_integration_session_runs_without_a_backend(
    emulator: RunwayEmulator, host_for: Callable[..., Host]
) -> None:
    provider = emulator.provider(monitor_interval=0.02, result_wait=2.0)
    emulator.plan_next(practical_limit=0.3)  # Runway ends the call after 0.3 s
    request = SessionRequest(provider="runway", avatar="influencer", options={"integration": ROOM})
    ready = []
    async with host_for(provider) as host, host.session(request) as session:
        async for event in session.events():
            if event.type == "ready":
                ready.append(event.credentials)  # type: ignore[attr-defined]
    result = session.result
    assert result is not None
    (credentials,) = ready
    assert credentials.kind == "integration"
    assert credentials.reveal() == {
        "sessionId": result.provider_session_id,
        "url": "wss://my-project.livekit.cloud",
        "roomName": "support-42",
    }
    assert result.outcome == "completed"
    sid = result.provider_session_id
    assert emulator.count("POST", f"/v1/realtime_sessions/{sid}/connect_backend") == 0
    assert emulator.session(sid)["body"]["integration"]["roomName"] == "support-42"
