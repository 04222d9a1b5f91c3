"""The typed async client for custom avatars, knowledge documents, uploads, usage and
conversations, against the emulator (asyncio and trio)."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest

from masquerade import Host, SessionRequest
from masquerade_runway import (
    UNSET,
    CustomVoice,
    PresetVoice,
    RunwayBadRequest,
    RunwayClient,
    RunwayError,
    RunwayNotFound,
)
from masquerade_runway.emulator import RunwayEmulator

pytestmark = pytest.mark.anyio

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
)


async def test_avatars_documents_and_usage(
    client: RunwayClient, emulator: RunwayEmulator, tmp_path: Path
) -> None:
    image = tmp_path / "ada.png"
    image.write_bytes(PNG)
    async with client:
        faq = await client.documents.create(name="FAQ", content="# Returns\nWithin 30 days.")
        assert faq.content == "# Returns\nWithin 30 days."
        avatar = await client.avatars.create(
            name="Ada",
            personality="You are Ada.",
            reference_image=image,  # a path: uploaded first
            voice="clara",
            document_ids=[faq.id],
            start_script="Hi, I'm Ada.",
        )
        assert avatar.status == "PROCESSING"
        ready = await client.avatars.wait_ready(avatar.id, interval=0.01)
        assert ready.status == "READY"
        assert ready.voice == {
            "type": "runway-live-preset",
            "presetId": "clara",
            "name": "Clara",
            "description": "The Clara preset voice.",
        }
        uploads = [r for r in emulator.requests if r.path.startswith("/_uploads/")]
        assert [r.status for r in uploads][-1:] == [204]

        # Only what is given changes; None clears the opening line.
        updated = await client.avatars.update(
            avatar.id, voice=PresetVoice(preset_id="leo"), start_script=None, name=UNSET
        )
        assert (updated.name, updated.start_script) == ("Ada", None)
        assert updated.voice is not None
        assert updated.voice["presetId"] == "leo"
        custom = await client.avatars.update(avatar.id, voice=CustomVoice(id="voice_123"))
        assert custom.voice is not None
        assert custom.voice["type"] == "custom"
        from_bytes = await client.avatars.update(avatar.id, reference_image=PNG)
        assert from_bytes.status == "PROCESSING"  # a new image is processed again

        await client.documents.update(faq.id, content="Within 60 days.")
        document = await client.documents.retrieve(faq.id)
        assert document.content == "Within 60 days."
        assert [user.name for user in document.used_by] == ["Ada"]
        listed = [d async for d in client.documents.iter(limit=1, order="asc")]
        assert faq.id in {d.id for d in listed}
        assert all(d.content is None for d in listed)  # list items carry no content
        mine = [a async for a in client.avatars.iter(limit=1)]
        assert avatar.id in {a.id for a in mine}

        today = datetime.now(UTC).date()
        usage = await client.avatars.usage(start_date=today, end_date=today + timedelta(days=2))
        assert [day.date for day in usage.by_day] == [
            today.isoformat(),
            (today + timedelta(days=1)).isoformat(),
        ]
        with pytest.raises(RunwayBadRequest, match="at most 90 days"):
            await client.avatars.usage(start_date="2000-01-01", end_date="2001-01-01")
        with pytest.raises(RunwayBadRequest, match="not found"):
            await client.avatars.create(
                name="Bob",
                personality="p",
                reference_image="https://example.com/bob.png",
                voice="max",
                document_ids=["nope"],
            )

        await client.documents.delete(faq.id)
        assert (await client.avatars.retrieve(avatar.id)).document_ids == []
        await client.avatars.delete(avatar.id)
        with pytest.raises(RunwayNotFound):
            await client.avatars.retrieve(avatar.id)


async def test_a_failed_avatar_is_reported(client: RunwayClient, emulator: RunwayEmulator) -> None:
    avatar_id = emulator.add_avatar("Broken", status="FAILED")
    async with client:
        with pytest.raises(RunwayError, match="failed"):
            await client.avatars.wait_ready(avatar_id, interval=0.01)


async def test_a_session_with_a_custom_avatar_its_recording_and_deletion(
    client: RunwayClient,
    emulator: RunwayEmulator,
    host_for: Callable[..., Host],
    tmp_path: Path,
) -> None:
    async with client:
        avatar = await client.avatars.create(
            name="Ada", personality="Kind.", reference_image=PNG, voice="nina"
        )
        await client.avatars.wait_ready(avatar.id, interval=0.01)
    emulator.plan_next(script=[{"say": "Hello from Ada."}, {"hangup": True}], recording_ttl=1)
    provider = emulator.provider(end_grace=5.0, result_wait=10.0)  # bounds, not timings
    async with host_for(provider) as host:
        result = await host.run_session(SessionRequest(provider="runway", avatar=avatar.id))
    assert [t.text for t in result.transcript] == ["Hello from Ada."]
    sid, url = result.provider_session_id, result.recording_url
    assert sid is not None
    assert url is not None

    async with client:
        # A kept URL that expired is refreshed by fetching the conversation again.
        with anyio.fail_after(10):
            async with httpx.AsyncClient() as http:
                while True:
                    if (await http.get(url)).status_code == 403:
                        break
                    await anyio.sleep(0.05)
        before = emulator.count("GET", f"/v1/avatar_conversations/{sid}")
        size = await client.conversations.download_recording(sid, tmp_path / "call.mp4", url=url)
        assert size == (tmp_path / "call.mp4").stat().st_size > 0
        assert emulator.count("GET", f"/v1/avatar_conversations/{sid}") == before + 1
        buffer = io.BytesIO()
        assert await client.conversations.download_recording(sid, buffer) == size
        assert buffer.getvalue()[4:8] == b"ftyp"

        # Deleting the conversation erases the transcript and the recording.
        await client.conversations.delete(sid)
        with pytest.raises(RunwayNotFound):
            await client.conversations.retrieve(sid)
        with pytest.raises(RunwayNotFound):
            await client.conversations.download_recording(sid, tmp_path / "gone.mp4")
        ids = {c.id async for c in client.conversations.iter(limit=100)}
        assert sid not in ids


async def test_a_conversation_in_progress_cannot_be_deleted(client: RunwayClient) -> None:
    async with client:
        sid = await client.create_realtime_session(
            {"model": "gwm1_avatars", "avatar": {"type": "runway-preset", "presetId": "influencer"}}
        )
        with pytest.raises(RunwayBadRequest, match="in progress"):
            await client.conversations.delete(sid)
        with pytest.raises(RunwayNotFound, match="no recording"):
            await client.conversations.download_recording(sid, io.BytesIO())
        await client.delete_realtime_session(sid)
        await client.conversations.delete(sid)  # never started, now ended: deletable
