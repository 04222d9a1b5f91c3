"""``GET /_emulator/sessions``: every session the emulator created, with each backend tool
call and how many answers it received, in process and from ``masquerade emulate runway``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

from masquerade import Host, SessionRequest
from masquerade_runway import RunwayClient, RunwayProvider
from masquerade_runway._ws import WebSocket
from masquerade_runway.emulator import RunwayEmulator

from .tools_for_tests import lookup_order

pytestmark = pytest.mark.anyio

TOOL_SCRIPT: list[dict[str, Any]] = [
    {"say": "Let me check."},
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"say": "Shipped. Bye!"},
    {"hangup": True},
]


def inventory(base_url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/_emulator/sessions")
    assert response.status_code == 200
    sessions: list[dict[str, Any]] = response.json()["sessions"]
    return sessions


@pytest.fixture(scope="module")
def emulate_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    script = tmp_path_factory.mktemp("inventory") / "script.json"
    script.write_text(json.dumps({"steps": TOOL_SCRIPT, "plan": {"provisioning": 0.02}}))
    process = subprocess.Popen(
        [sys.executable, "-m", "masquerade.cli", "emulate", "runway", "--script", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().rsplit(" ", 1)[1].strip()
        key = process.stdout.readline().split(": ", 1)[1].strip()
        yield base_url, key
    finally:
        process.terminate()
        process.wait(10)


async def test_out_of_process_emulator_lists_sessions_and_answers(
    emulate_process: tuple[str, str], host_for: Callable[..., Host]
) -> None:
    base_url, key = emulate_process
    before = {s["id"] for s in inventory(base_url)}
    provider = RunwayProvider(base_url=base_url, api_key=key, room="emulator", end_grace=1.0)
    request = SessionRequest(provider="runway", avatar="cooking-teacher", tools=[lookup_order])
    async with host_for(provider) as host:
        result = await host.run_session(request)
    assert result.outcome == "completed"
    (listed,) = [s for s in inventory(base_url) if s["id"] not in before]
    assert listed["id"] == result.provider_session_id
    assert listed["status"] == "COMPLETED"
    assert [(c["name"], c["answers"], c["error"]) for c in listed["toolCalls"]] == [
        ("lookup_order", 1, None)
    ]


async def test_answers_are_counted_even_when_a_backend_answers_twice(
    emulator: RunwayEmulator, client: RunwayClient
) -> None:
    # A misbehaving backend (raw websocket) answers the same call twice; a method nobody
    # registered is never answered.
    emulator.plan_next(
        script=[{"tool": "twice", "args": {}}, {"tool": "nobody", "args": {}}]
    )
    tools = [
        {"type": "backend_rpc", "name": n, "description": "d", "timeoutSeconds": 1}
        for n in ("twice", "nobody")
    ]
    async with client:
        sid = await client.create_realtime_session(
            {
                "model": "gwm1_avatars",
                "avatar": {"type": "runway-preset", "presetId": "influencer"},
                "tools": tools,
            }
        )
        with anyio.fail_after(10):
            while True:
                if (await client.retrieve_realtime_session(sid)).status == "READY":
                    break
                await anyio.sleep(0.01)
        credentials = await client.connect_backend(sid)
    ws = await WebSocket.connect(
        credentials.url,
        headers={"Authorization": f"Bearer {credentials.token.get_secret_value()}"},
    )
    try:
        await ws.recv()  # joined
        await ws.send(json.dumps({"type": "register_rpc", "method": "twice"}))
        with anyio.fail_after(10):
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "rpc_request":
                    break
        for answer in ("1", "2"):
            reply = {"type": "rpc_response", "requestId": message["requestId"], "payload": answer}
            await ws.send(json.dumps(reply))
        expected = [("twice", 2, None), ("nobody", 0, "Method not supported at destination")]
        with anyio.fail_after(10):
            while True:
                (listed,) = [s for s in inventory(emulator.base_url) if s["id"] == sid]
                calls = [(c["name"], c["answers"], c["error"]) for c in listed["toolCalls"]]
                if calls == expected:
                    break
                await anyio.sleep(0.01)
    finally:
        await ws.close()
    assert listed["status"] == "RUNNING"
    assert emulator.inventory() == inventory(emulator.base_url)
    assert emulator.session(sid)["tool_calls"] == listed["toolCalls"]


async def test_sessions_that_never_started_are_listed(
    emulator: RunwayEmulator, client: RunwayClient
) -> None:
    async with client:
        sid = await client.create_realtime_session(
            {"model": "gwm1_avatars", "avatar": {"type": "runway-preset", "presetId": "influencer"}}
        )
        await client.delete_realtime_session(sid)
    (listed,) = [s for s in inventory(emulator.base_url) if s["id"] == sid]
    assert listed["status"] == "CANCELLED"
    assert listed["toolCalls"] == []
    assert listed["endedBy"] == "api"
