"""The emulator's wire format, its room, the official SDK against it, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import runwayml

from masquerade_runway import EmulatorRoom, RoomError
from masquerade_runway.emulator import RunwayEmulator, SessionPlan, load_script, parse_script

PRESET = {"model": "gwm1_avatars", "avatar": {"type": "runway-preset", "presetId": "influencer"}}


def http(emulator: RunwayEmulator, **headers: str) -> httpx.Client:
    base = {"Authorization": f"Bearer {emulator.api_key}", "X-Runway-Version": "2024-11-06"}
    base.update(headers)
    return httpx.Client(base_url=emulator.base_url, headers={k: v for k, v in base.items() if v})


def test_wire_format_and_status_codes(emulator: RunwayEmulator) -> None:
    emulator.plan_next(provisioning=300)  # NOT_READY whatever the machine's load
    with http(emulator) as c:
        created = c.post("/v1/realtime_sessions", json=PRESET)
        assert created.status_code == 200
        assert list(created.json()) == ["id"]
        sid = created.json()["id"]
        status = c.get(f"/v1/realtime_sessions/{sid}").json()
        assert set(status) >= {"id", "createdAt", "status"}
        assert status["status"] == "NOT_READY"
        assert status["createdAt"].endswith("Z")
        assert c.get("/v1/realtime_sessions/nope").status_code == 404
        assert c.get("/v1/realtime_sessions/nope").json() == {"error": "Session not found"}
        assert c.delete(f"/v1/realtime_sessions/{sid}").status_code == 204
        assert c.get(f"/v1/realtime_sessions/{sid}").json()["status"] == "CANCELLED"
        assert c.get("/v1/avatar_conversations/nope").status_code == 404
        assert c.put(f"/v1/realtime_sessions/{sid}").status_code == 405
        assert "error" in c.get("/v1/unknown").json()
        bad = {
            "unknown key": ({**PRESET, "instructions": "x"}, "Unrecognized key: instructions"),
            "too long": ({**PRESET, "maxDuration": 1801}, "Too big: expected number to be <=1800"),
            "bad model": ({**PRESET, "model": "gen4"}, "Invalid input"),
            "bad preset": (
                {**PRESET, "avatar": {"type": "runway-preset", "presetId": "x"}},
                "Invalid option",
            ),
            "tool name": (
                {**PRESET, "tools": [{"type": "backend_rpc", "name": "1x", "description": "d"}]},
                "tools.0.name",
            ),
            "rpc timeout": (
                {**PRESET, "tools": [{"type": "backend_rpc", "name": "x", "description": "d",
                                      "timeoutSeconds": 9}]},
                "Too big",
            ),
        }
        for case, (body, message) in bad.items():
            answer = c.post("/v1/realtime_sessions", json=body)
            assert answer.status_code == 400, case
            assert message in answer.json()["error"], case
    with http(emulator, **{"X-Runway-Version": ""}) as c:
        answer = c.post("/v1/realtime_sessions", json=PRESET)
        assert answer.status_code == 400
        assert "X-Runway-Version" in answer.json()["error"]
    with http(emulator, Authorization="Bearer wrong") as c:
        assert c.get("/v1/avatars?limit=1").status_code == 401
    with http(emulator, Authorization="") as c:
        assert c.get("/v1/avatars?limit=1").json() == {"error": "Invalid API key"}


def test_status_timeline_and_faults(emulator: RunwayEmulator) -> None:
    # Each phase lasts long enough that 10 ms polls see it even on a loaded machine.
    emulator.plan_next(queued=0.5, provisioning=0.5)
    emulator.plan_next(fail_code="CAPACITY", failure="no room", provisioning=0.0)
    with http(emulator) as c:
        sid = c.post("/v1/realtime_sessions", json=PRESET).json()["id"]
        failing = c.post("/v1/realtime_sessions", json=PRESET).json()["id"]
        seen = []
        deadline = time.monotonic() + 30  # a bound against a hang only
        while time.monotonic() < deadline:
            body = c.get(f"/v1/realtime_sessions/{sid}").json()
            state = (body["status"], body.get("queued"))
            if not seen or seen[-1] != state:
                seen.append(state)
            if body["status"] == "READY":
                assert body["sessionKey"]
                assert body["expiresAt"]
                break
            time.sleep(0.01)
        assert seen == [("NOT_READY", True), ("NOT_READY", False), ("READY", None)]
        failed = c.get(f"/v1/realtime_sessions/{failing}").json()
        assert failed["status"] == "FAILED"
        assert failed["failureCode"] == "CAPACITY"
        assert failed["failure"] == "no room"
        assert c.post(f"/v1/realtime_sessions/{failing}/connect_backend").status_code == 400

        emulator.inject(status=429, retry_after=1.5, path="/v1/avatars")
        limited = c.get("/v1/avatars?limit=1")
        assert limited.status_code == 429
        assert limited.headers["retry-after-ms"] == "1500"
        assert limited.headers["retry-after"] == "2"
        assert c.get("/v1/avatars?limit=1").status_code == 200  # the fault was used up


def test_official_sdk_against_the_emulator(emulator: RunwayEmulator) -> None:
    emulator.plan_next(script=[{"say": "Hello from the SDK test"}, {"hangup": True}],
                       start_on="join")
    sdk = runwayml.RunwayML(api_key=emulator.api_key, base_url=emulator.base_url, max_retries=0)
    created = sdk.realtime_sessions.create(
        model="gwm1_avatars",
        avatar={"type": "runway-preset", "presetId": "cooking-teacher"},
        max_duration=60,
        personality="Friendly.",
        tools=[{"type": "backend_rpc", "name": "lookup", "description": "Look up.",
                "timeout_seconds": 3}],
    )
    assert emulator.wait_until(created.id, "READY")
    ready = sdk.realtime_sessions.retrieve(created.id)
    assert ready.status == "READY"
    assert ready.session_key
    # The frontend consumes and joins the emulator room; the script runs and hangs up.
    consumed = httpx.post(
        f"{emulator.base_url}/v1/realtime_sessions/{created.id}/consume",
        headers={"Authorization": f"Bearer {ready.session_key}"},
    ).json()
    import anyio

    async def join() -> None:
        room = EmulatorRoom()
        await room.connect(consumed["url"], consumed["token"])
        await room.wait_closed()

    anyio.run(join)
    assert emulator.wait_until(created.id, "COMPLETED")
    completed = sdk.realtime_sessions.retrieve(created.id)
    assert completed.status == "COMPLETED"
    conversation = sdk.avatar_conversations.retrieve(created.id)
    deadline = time.monotonic() + 20  # finalized a moment after the end (another thread)
    while conversation.status == "in_progress" and time.monotonic() < deadline:
        time.sleep(0.01)
        conversation = sdk.avatar_conversations.retrieve(created.id)
    assert conversation.status == "ended"
    assert conversation.transcript[0].content == "Hello from the SDK test"
    assert [t.name for t in conversation.tools] == ["lookup"]
    other = sdk.realtime_sessions.create(
        model="gwm1_avatars", avatar={"type": "runway-preset", "presetId": "cooking-teacher"}
    )
    sdk.realtime_sessions.delete(other.id)
    assert sdk.realtime_sessions.retrieve(other.id).status == "CANCELLED"
    with pytest.raises(runwayml.BadRequestError, match="Too big"):
        sdk.realtime_sessions.create(
            model="gwm1_avatars",
            avatar={"type": "runway-preset", "presetId": "cooking-teacher"},
            max_duration=5000,
        )
    with pytest.raises(runwayml.NotFoundError):
        sdk.realtime_sessions.retrieve("missing")
    with pytest.raises(runwayml.AuthenticationError):
        runwayml.RunwayML(api_key="wrong", base_url=emulator.base_url,
                          max_retries=0).realtime_sessions.retrieve(other.id)


@pytest.mark.anyio
async def test_room_rejects_unknown_tokens(emulator: RunwayEmulator) -> None:
    room = EmulatorRoom()
    with pytest.raises(RoomError, match="403"):
        await room.connect(emulator.base_url.replace("http", "ws") + "/rtc", "not-a-token")
    assert not room.connected


def test_scripts_load_from_files(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"steps": [{"say": "hi"}, {"hangup": True}],
                                "plan": {"queued": 1.5}}))
    steps, plan = load_script(path)
    assert [type(s).__name__ for s in steps] == ["Say", "Hangup"]
    assert plan == SessionPlan(queued=1.5)
    with pytest.raises(ValueError, match="exactly one of"):
        parse_script([{"say": "x", "tool": "y"}])
    with pytest.raises(ValueError, match="colour"):
        parse_script([{"say": "x", "colour": "blue"}])


def test_cli_emulate_runway(tmp_path: Path) -> None:
    script = tmp_path / "s.json"
    script.write_text(json.dumps([{"say": "hello"}]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "masquerade.cli", "emulate", "runway", "--script", str(script)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        second = process.stdout.readline()
        assert "runway emulator listening on http://127.0.0.1:" in first
        base_url = first.rsplit(" ", 1)[1].strip()
        key = second.split(": ", 1)[1].strip()
        assert len(key) > 20  # a random key, printed once
        headers = {"Authorization": f"Bearer {key}", "X-Runway-Version": "2024-11-06"}
        assert httpx.get(f"{base_url}/v1/avatars?limit=1", headers=headers).status_code == 200
        headers["Authorization"] = "Bearer other"
        assert httpx.get(f"{base_url}/v1/avatars?limit=1", headers=headers).status_code == 401
    finally:
        process.terminate()
        process.wait(10)


def test_cli_emulate_interface(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from masquerade.cli import _emulate as emulate
    from masquerade.cli import main
    from masquerade.provider import Emulator

    assert main(["emulate"]) == 0
    assert "runway\tmasquerade_runway.emulator:serve" in capsys.readouterr().out
    assert main(["emulate", "nope"]) == 1
    assert "no emulator named 'nope'" in capsys.readouterr().err

    # The generic command passes only the keyword arguments the emulator declares.
    seen: dict[str, object] = {}

    async def fake_serve(*, host: str, port: int, api_key: str, ready: object) -> None:
        seen.update(host=host, port=port, api_key=api_key)
        ready("http://127.0.0.1:1234")  # type: ignore[operator]

    fake = Emulator("fake", fake_serve)  # type: ignore[arg-type]
    monkeypatch.setattr(emulate, "available_emulators", lambda: {"fake": fake})
    assert main(["emulate", "fake", "--port", "1234", "--api-key", "my-own-key-123"]) == 0
    assert seen == {"host": "127.0.0.1", "port": 1234, "api_key": "my-own-key-123"}
    out = capsys.readouterr().out
    assert "fake emulator listening on http://127.0.0.1:1234" in out
    assert "api key: my-own-key-123" in out
    assert main(["emulate", "fake", "--script", "x.json"]) == 1  # it takes no script
    assert "does not take a --script" in capsys.readouterr().err
