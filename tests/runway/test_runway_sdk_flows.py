"""The official ``runwayml`` SDK, used as its docs show, against the emulator: custom
avatars with an uploaded reference image, knowledge documents, sessions with documents and
with integrations, conversations (listed, deleted), usage, and every invalid body refused
with the API's status code and wording."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
import runwayml

from masquerade_runway import DataMessage, EmulatorRoom, RunwayClient
from masquerade_runway.emulator import RunwayEmulator

PRESET = {"type": "runway-preset", "presetId": "influencer"}
LIVEKIT = {
    "type": "livekit",
    "url": "wss://my-project.livekit.cloud",
    "token": "lk_worker_token_1234567890",
    "room_name": "support-42",
}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
)


@pytest.fixture
def sdk(emulator: RunwayEmulator) -> Iterator[runwayml.RunwayML]:
    with runwayml.RunwayML(
        api_key=emulator.api_key, base_url=emulator.base_url, max_retries=0
    ) as client:
        yield client


def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("the condition did not hold in time")


def join_as_frontend(emulator: RunwayEmulator, sdk: runwayml.RunwayML, session_id: str) -> None:
    """Consume the session with its key and stay in the room until it closes."""
    ready = until(lambda: _ready(sdk, session_id))
    consumed = httpx.post(
        f"{emulator.base_url}/v1/realtime_sessions/{session_id}/consume",
        headers={"Authorization": f"Bearer {ready.session_key}"},
    ).json()

    async def join() -> None:
        room = EmulatorRoom()
        await room.connect(consumed["url"], consumed["token"])
        await room.wait_closed()

    anyio.run(join)


def _ready(sdk: runwayml.RunwayML, session_id: str) -> Any:
    status = sdk.realtime_sessions.retrieve(session_id)
    return status if status.status == "READY" else None


def ended_conversation(sdk: runwayml.RunwayML, session_id: str) -> Any:
    def read() -> Any:
        conversation = sdk.avatar_conversations.retrieve(session_id)
        return conversation if conversation.status != "in_progress" else None

    return until(read)


def test_custom_avatar_documents_session_conversation_and_deletion(
    emulator: RunwayEmulator, sdk: runwayml.RunwayML
) -> None:
    # The reference image goes up through the uploads API, as the SDK's docs show.
    uploaded = sdk.uploads.create_ephemeral(file=("face.png", PNG, "image/png"))
    assert uploaded.uri.startswith("runway://")
    faq = sdk.documents.create(name="FAQ", content="# Returns\nWithin 30 days.")
    assert faq.used_by == []
    avatar = sdk.avatars.create(
        name="Ada",
        personality="You are Ada, a patient support agent.",
        reference_image=uploaded.uri,
        voice={"type": "runway-live-preset", "preset_id": "clara"},
        document_ids=[faq.id],
        start_script="Hi, I'm Ada.",
    )
    assert avatar.status == "PROCESSING"
    ready = until(lambda: (a := sdk.avatars.retrieve(avatar.id)).status == "READY" and a)
    assert ready.voice.name == "Clara"
    assert ready.document_ids == [faq.id]
    assert sdk.documents.retrieve(faq.id).used_by[0].name == "Ada"

    # Update: another voice, a second document (documentIds replaces), no opening line.
    policies = sdk.documents.create(name="Policies", content="Be kind.")
    updated = sdk.avatars.update(
        avatar.id,
        voice={"type": "runway-live-preset", "preset_id": "leo"},
        document_ids=[faq.id, policies.id],
        start_script=None,
    )
    assert updated.voice.preset_id == "leo"  # type: ignore[union-attr]
    assert updated.document_ids == [faq.id, policies.id]
    assert updated.start_script is None
    sdk.documents.update(policies.id, content="Be very kind.")
    assert sdk.documents.retrieve(policies.id).content == "Be very kind."
    listed = list(sdk.documents.list(limit=1, order="asc", sort="createdAt"))
    assert {d.id for d in listed} >= {faq.id, policies.id}

    # A session with the custom avatar; a frontend joins; the conversation is kept.
    emulator.plan_next(script=[{"say": "Returns take 30 days."}, {"hangup": True}], start_on="join")
    created = sdk.realtime_sessions.create(
        model="gwm1_avatars", avatar={"type": "custom", "avatar_id": avatar.id}
    )
    join_as_frontend(emulator, sdk, created.id)
    conversation = ended_conversation(sdk, created.id)
    assert conversation.transcript[0].content == "Returns take 30 days."
    assert conversation.avatar.name == "Ada"  # type: ignore[union-attr]
    assert conversation.recording_url
    assert httpx.get(conversation.recording_url).status_code == 200
    mine = list(sdk.avatar_conversations.list(limit=10, avatar=avatar.id))
    assert [c.id for c in mine] == [created.id]
    usage = sdk.avatars.get_usage(start_date="2000-01-01", end_date="2000-03-01")
    assert usage.total_sessions == 0
    assert len(usage.by_day) == 60

    # Deletion: the conversation (transcript and recording), then the avatar and documents.
    sdk.avatar_conversations.delete(created.id)
    with pytest.raises(runwayml.NotFoundError):
        sdk.avatar_conversations.retrieve(created.id)
    assert httpx.get(conversation.recording_url).status_code == 404
    assert created.id not in {c.id for c in sdk.avatar_conversations.list(limit=100)}
    sdk.documents.delete(faq.id)
    assert sdk.avatars.retrieve(avatar.id).document_ids == [policies.id]
    sdk.avatars.delete(avatar.id)
    with pytest.raises(runwayml.NotFoundError):
        sdk.avatars.retrieve(avatar.id)
    with pytest.raises(runwayml.BadRequestError, match="not found"):
        sdk.realtime_sessions.create(
            model="gwm1_avatars", avatar={"type": "custom", "avatar_id": avatar.id}
        )


def test_usage_counts_conversations_by_day(
    emulator: RunwayEmulator, sdk: runwayml.RunwayML
) -> None:
    emulator.plan_next(script=[{"hangup": True}], start_on="join")
    created = sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET)
    join_as_frontend(emulator, sdk, created.id)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    usage = sdk.avatars.get_usage(start_date=today, end_date=tomorrow)
    assert usage.total_sessions >= 1
    assert [day.date.isoformat() for day in usage.by_day] == [today]
    assert usage.by_day[0].sessions == usage.total_sessions
    with pytest.raises(runwayml.BadRequestError, match="at most 90 days"):
        sdk.avatars.get_usage(start_date="2000-01-01", end_date="2001-01-01")


def test_sessions_with_an_integration_and_the_deprecated_livekit_parameter(
    emulator: RunwayEmulator, sdk: runwayml.RunwayML
) -> None:
    # LiveKit integration: the avatar worker joins your room, so the session runs
    # without a Runway frontend, and it has no Runway room of its own.
    created = sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET, integration=LIVEKIT)
    until(lambda: sdk.realtime_sessions.retrieve(created.id).status == "RUNNING")
    body = emulator.session(created.id)["body"]
    assert body["integration"]["roomName"] == "support-42"
    with pytest.raises(runwayml.BadRequestError, match="LiveKit integration"):
        sdk.post(f"/v1/realtime_sessions/{created.id}/connect_backend", cast_to=object)
    sdk.realtime_sessions.delete(created.id)
    assert sdk.realtime_sessions.retrieve(created.id).status == "CANCELLED"

    # The deprecated `livekit` parameter is still accepted: read as that integration.
    legacy = {k: v for k, v in LIVEKIT.items() if k != "type"}
    old = sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET, livekit=legacy)
    assert emulator.session(old.id)["body"]["integration"]["type"] == "livekit"
    sdk.realtime_sessions.delete(old.id)

    eleven = sdk.realtime_sessions.create(
        model="gwm1_avatars",
        avatar=PRESET,
        integration={"type": "elevenlabs", "signed_url": "wss://api.elevenlabs.io/v1/x?sig=1"},
    )
    sdk.realtime_sessions.delete(eleven.id)


_TOOL: dict[str, Any] = {"type": "backend_rpc", "name": "lookup", "description": "Look up."}


def _with_parameter(parameter: dict[str, Any]) -> dict[str, Any]:
    return {"tools": [{**_TOOL, "parameters": [parameter]}]}


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "array without items": (
        _with_parameter({"type": "array", "name": "ids", "description": "d"}),
        "tools.0.parameters.0.items: Invalid input: expected object, received undefined",
    ),
    "object without properties": (
        _with_parameter({"type": "object", "name": "address", "description": "d"}),
        "tools.0.parameters.0.properties: Invalid input: expected array, received undefined",
    ),
    "unknown key in a parameter": (
        _with_parameter({"type": "string", "name": "q", "description": "d", "format": "x"}),
        "tools.0.parameters.0: Unrecognized key: format",
    ),
    "parameter name pattern": (
        _with_parameter({"type": "string", "name": "1x-y", "description": "d"}),
        "tools.0.parameters.0.name: Invalid string: must match pattern",
    ),
    "too many nested properties": (
        _with_parameter(
            {
                "type": "object",
                "name": "address",
                "description": "d",
                "properties": [
                    {"type": "string", "name": f"p{i}", "description": "d"} for i in range(21)
                ],
            }
        ),
        "tools.0.parameters.0.properties: Too big: expected array to have <=20 items",
    ),
    "timeoutSeconds on a client_event tool": (
        {"tools": [{"type": "client_event", "name": "show", "description": "d",
                    "timeoutSeconds": 2}]},
        "tools.0: Unrecognized key: timeoutSeconds",
    ),
    "integration without its fields": (
        {"integration": {"type": "livekit", "url": "wss://lk.example.com"}},
        "integration.token: Invalid input: expected string, received undefined",
    ),
    "integration with an http URL": (
        {"integration": {**{k: v for k, v in LIVEKIT.items() if k != "room_name"},
                         "roomName": "r", "url": "http://lk.example.com"}},
        "integration.url: Invalid URL: must be a wss:// or https:// URL",
    ),
    "integration on a private host": (
        {"integration": {"type": "elevenlabs", "signedUrl": "wss://127.0.0.1/agent"}},
        "integration.signedUrl: Invalid URL: must resolve to a public host",
    ),
    "maxDuration as a string": (
        {"maxDuration": "60"},
        "Invalid input: expected int, received string",
    ),
    "maxDuration over the limit": ({"maxDuration": 1801}, "Too big: expected number to be <=1800"),
    "both integration and livekit": (
        {"integration": {"type": "elevenlabs", "signedUrl": "wss://api.elevenlabs.io/x"},
         "livekit": {"url": "wss://lk.example.com", "token": "t", "roomName": "r"}},
        "Provide either integration or livekit, not both",
    ),
    "unknown key": ({"instructions": "Be brief."}, "Unrecognized key: instructions"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_session_bodies_are_refused_like_the_api(
    sdk: runwayml.RunwayML, case: str
) -> None:
    extra, message = INVALID[case]
    with pytest.raises(runwayml.BadRequestError) as refused:
        sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET, extra_body=extra)
    assert refused.value.status_code == 400
    assert refused.value.body["error"].startswith(message)  # type: ignore[index]


INVALID_AVATARS: dict[str, tuple[dict[str, Any], str]] = {
    "missing voice": ({"voice": None}, "Invalid input: expected object, received undefined"),
    "unknown preset voice": (
        {"voice": {"type": "runway-live-preset", "presetId": "hal"}},
        "voice.presetId: Invalid option",
    ),
    "http reference image": (
        {"referenceImage": "http://example.com/a.png"},
        "Invalid input: expected a HTTPS URL",
    ),
    "not an image data URI": (
        {"referenceImage": "data:text/plain;base64,aGk="},
        "Invalid data URI",
    ),
    "unknown upload": ({"referenceImage": "runway://uploads/nope/x.png"}, "Upload"),
    "unknown document": ({"documentIds": ["nope"]}, "Document nope not found"),
    "empty name": ({"name": ""}, "Too small: expected string to have >=1 characters"),
    "bad image processing": (
        {"imageProcessing": "max"},
        'Invalid input: expected "optimize"|"none"',
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_AVATARS))
def test_invalid_avatar_bodies_are_refused_like_the_api(
    emulator: RunwayEmulator, case: str
) -> None:
    body: dict[str, Any] = {
        "name": "Ada",
        "personality": "Kind.",
        "referenceImage": "https://example.com/ada.png",
        "voice": {"type": "runway-live-preset", "presetId": "clara"},
    }
    change, message = INVALID_AVATARS[case]
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    headers = {"Authorization": f"Bearer {emulator.api_key}", "X-Runway-Version": "2024-11-06"}
    refused = httpx.post(f"{emulator.base_url}/v1/avatars", json=body, headers=headers)
    assert refused.status_code == 400
    assert refused.json()["error"].startswith(message)


def test_conversations_of_sessions_that_never_started(
    emulator: RunwayEmulator, sdk: runwayml.RunwayML
) -> None:
    created = sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET)
    sdk.realtime_sessions.delete(created.id)
    sdk.realtime_sessions.delete(created.id)  # a second DELETE: 204 again, nothing changes
    assert sdk.realtime_sessions.retrieve(created.id).status == "CANCELLED"
    conversation = sdk.avatar_conversations.retrieve(created.id)
    assert conversation.status == "ended"
    assert conversation.duration is None
    assert conversation.recording_url is None
    assert conversation.avatar.name == "Influencer"  # type: ignore[union-attr]
    (listed,) = [c for c in sdk.avatar_conversations.list(limit=100) if c.id == created.id]
    assert listed.duration is None
    assert listed.name == "Influencer"
    assert listed.avatar.name == "Influencer"  # type: ignore[union-attr]


def test_ready_expires_and_only_a_frontend_makes_a_session_running(
    emulator: RunwayEmulator, sdk: runwayml.RunwayML
) -> None:
    # Nobody joins: at expiresAt the READY session fails, also with nobody polling.
    emulator.plan_next(ready_ttl=0.3)
    lonely = sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET)
    until(lambda: emulator.session(lonely.id)["status"] == "FAILED")
    failed = sdk.realtime_sessions.retrieve(lonely.id)
    assert failed.failure_code == "SESSION_EXPIRED"  # type: ignore[union-attr]

    # The backend alone does not make it RUNNING (with a real frontend expected)...
    emulator.plan_next(frontend="real", script=[{"say": "Hello, you!"}])
    created = sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET)
    until(lambda: _ready(sdk, created.id))
    backend = sdk.post(f"/v1/realtime_sessions/{created.id}/connect_backend", cast_to=object)

    async def backend_then_frontend() -> list[bytes]:
        heard: list[bytes] = []
        greeted = anyio.Event()

        def on_data(message: DataMessage) -> None:
            heard.append(message.payload)
            greeted.set()

        backend_room = EmulatorRoom()
        await backend_room.connect(backend["url"], backend["token"])  # type: ignore[index]
        await anyio.sleep(0.1)
        assert emulator.session(created.id)["status"] == "READY"
        # ...a frontend joining does, and the avatar greets it.
        async with RunwayClient(emulator.api_key, base_url=emulator.base_url) as client:
            status = await client.retrieve_realtime_session(created.id)
            assert status.session_key is not None
            consumed = await client.consume_realtime_session(
                created.id, status.session_key.get_secret_value()
            )
        frontend = EmulatorRoom()
        frontend.on_data(on_data)
        await frontend.connect(consumed.url, consumed.token.get_secret_value())
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(frontend.wait_closed)
                await greeted.wait()
                tg.cancel_scope.cancel()
        await frontend.disconnect()
        await backend_room.disconnect()
        return heard

    heard = anyio.run(backend_then_frontend)
    assert emulator.session(created.id)["status"] == "RUNNING"
    assert b"transcription" in heard[0]
    sdk.realtime_sessions.delete(created.id)


def test_an_avatar_without_its_backend_greets_and_its_tools_time_out(
    emulator: RunwayEmulator, sdk: runwayml.RunwayML
) -> None:
    emulator.plan_next(
        frontend="real",
        script=[{"say": "Hi! Let me look."}, {"tool": "lookup", "args": {}}, {"hangup": True}],
    )
    created = sdk.realtime_sessions.create(
        model="gwm1_avatars",
        avatar=PRESET,
        tools=[{**_TOOL, "timeout_seconds": 1}],
    )
    join_as_frontend(emulator, sdk, created.id)
    conversation = ended_conversation(sdk, created.id)
    assert conversation.transcript[0].content == "Hi! Let me look."
    (result,) = conversation.transcript[1].tool_results or []
    assert result.error == "Response timeout"
    (listed,) = [s for s in emulator.inventory() if s["id"] == created.id]
    assert listed["toolCalls"] == [
        {"id": listed["toolCalls"][0]["id"], "name": "lookup", "answers": 0,
         "error": "Response timeout"}
    ]


def test_account_limits_queue_sessions_and_refuse_over_the_daily_quota() -> None:
    with RunwayEmulator(plan={"provisioning": 0.02}, account={"concurrency": 1}) as emulator:
        sdk = runwayml.RunwayML(api_key=emulator.api_key, base_url=emulator.base_url, max_retries=0)
        first = sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET)
        second = sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET)
        until(lambda: _ready(sdk, first.id))
        waiting = sdk.realtime_sessions.retrieve(second.id)
        assert (waiting.status, waiting.queued) == ("NOT_READY", True)  # type: ignore[union-attr]
        sdk.realtime_sessions.delete(first.id)  # a slot frees: the second provisions
        until(lambda: _ready(sdk, second.id))
        sdk.realtime_sessions.delete(second.id)

        emulator.set_account(daily=2)  # two sessions were created today already
        with pytest.raises(runwayml.RateLimitError) as limited:
            sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET)
        assert limited.value.status_code == 429
        assert "daily limit" in limited.value.body["error"]  # type: ignore[index]
        assert len(emulator.inventory()) == 2


def test_a_script_file_sets_the_account_limits(tmp_path: Any) -> None:
    # What `masquerade emulate runway --script FILE` reads: steps, plan and account.
    script = tmp_path / "quota.json"
    script.write_text('{"steps": [{"hangup": true}], "account": {"daily": 1}}')
    with RunwayEmulator(script=str(script)) as emulator:
        sdk = runwayml.RunwayML(api_key=emulator.api_key, base_url=emulator.base_url, max_retries=0)
        sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET)
        with pytest.raises(runwayml.RateLimitError):
            sdk.realtime_sessions.create(model="gwm1_avatars", avatar=PRESET)
