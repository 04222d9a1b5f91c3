"""The REST client against the emulator: endpoints, pagination, retries, typed errors."""

from __future__ import annotations

import httpx
import pytest

from masquerade import ConfigurationError, ProviderError
from masquerade_runway import (
    EmulatorRoom,
    RunwayAuthenticationError,
    RunwayBadRequest,
    RunwayClient,
    RunwayConnectionError,
    RunwayNotFound,
    RunwayRateLimited,
    RunwayServerError,
    RunwayTimeout,
)
from masquerade_runway._client import _retry_after
from masquerade_runway.emulator import RunwayEmulator

pytestmark = pytest.mark.anyio

PRESET = {"model": "gwm1_avatars", "avatar": {"type": "runway-preset", "presetId": "influencer"}}


async def wait_status(client: RunwayClient, session_id: str, status: str) -> None:
    import anyio

    with anyio.fail_after(20):  # a bound against a hang only
        while (await client.retrieve_realtime_session(session_id)).status != status:  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def test_session_endpoints(client: RunwayClient, emulator: RunwayEmulator) -> None:
    emulator.plan_next(queued=0.5, provisioning=0.02)  # the first GET surely sees the queue
    async with client:
        session_id = await client.create_realtime_session(PRESET)
        first = await client.retrieve_realtime_session(session_id)
        assert (first.status, first.queued) == ("NOT_READY", True)
        await wait_status(client, session_id, "READY")
        ready = await client.retrieve_realtime_session(session_id)
        assert ready.session_key is not None
        assert ready.expires_at
        assert ready.session_key.get_secret_value() not in repr(ready)
        backend = await client.connect_backend(session_id)
        assert backend.room_name == session_id
        assert backend.room_transport == "emulator"
        room = await client.consume_realtime_session(
            session_id, ready.session_key.get_secret_value()
        )
        assert room.url.startswith("ws://")
        assert room.token.get_secret_value()
        with pytest.raises(RunwayBadRequest, match="already been consumed"):
            await client.consume_realtime_session(
                session_id, ready.session_key.get_secret_value()
            )
        await client.delete_realtime_session(session_id)
        assert (await client.retrieve_realtime_session(session_id)).status == "CANCELLED"


async def test_consume_needs_the_session_key(
    client: RunwayClient, emulator: RunwayEmulator
) -> None:
    async with client:
        session_id = await client.create_realtime_session(PRESET)
        await wait_status(client, session_id, "READY")
        with pytest.raises(RunwayAuthenticationError) as caught:
            await client.consume_realtime_session(session_id, "rsk_wrong_wrong_wrong")
    assert caught.value.status_code == 401
    assert not caught.value.retryable


async def test_typed_errors(client: RunwayClient, emulator: RunwayEmulator) -> None:
    async with client:
        with pytest.raises(RunwayNotFound) as missing:
            await client.retrieve_realtime_session("no-such-session")
        with pytest.raises(RunwayBadRequest) as bad:
            await client.create_realtime_session({**PRESET, "instructions": "x"})
        with pytest.raises(RunwayBadRequest) as too_long:
            await client.create_realtime_session({**PRESET, "maxDuration": 1801})
    assert missing.value.status_code == 404
    assert missing.value.error == "Session not found"
    assert isinstance(missing.value, ProviderError)
    assert missing.value.provider == "runway"
    assert bad.value.error == "Unrecognized key: instructions"
    assert too_long.value.error == "Too big: expected number to be <=1800"
    assert "fix the request" in too_long.value.hint
    async with RunwayClient("key_" + "1" * 128, base_url=emulator.base_url) as wrong:
        with pytest.raises(RunwayAuthenticationError) as denied:
            await wrong.list_avatars()
    assert denied.value.status_code == 401
    assert "RUNWAYML_API_SECRET" in denied.value.hint
    assert "1" * 128 not in str(denied.value)


async def test_get_retries_429_with_retry_after(
    client: RunwayClient, emulator: RunwayEmulator
) -> None:
    emulator.inject(status=429, retry_after=0.03, method="GET", path="/v1/avatars", times=2)
    async with client:
        page = await client.list_avatars()
    answers = [r.status for r in emulator.requests if r.path == "/v1/avatars"][-3:]
    assert answers == [429, 429, 200]
    assert isinstance(page.data, list)


async def test_server_errors_exhaust_the_retries(
    client: RunwayClient, emulator: RunwayEmulator
) -> None:
    emulator.inject(status=503, method="GET", path="/v1/avatars", times=5)
    before = emulator.count("GET", "/v1/avatars")
    async with client:
        with pytest.raises(RunwayServerError) as caught:
            await client.list_avatars()
    assert emulator.count("GET", "/v1/avatars") - before == 3  # first try + 2 retries
    assert caught.value.retryable
    assert caught.value.status_code == 503


async def test_rate_limit_on_create_is_raised_not_retried(
    client: RunwayClient, emulator: RunwayEmulator
) -> None:
    emulator.inject(status=429, retry_after=0.5, method="POST", path=r"^/v1/realtime_sessions$")
    before = len(emulator.session_ids)
    async with client:
        with pytest.raises(RunwayRateLimited) as caught:
            await client.create_realtime_session(PRESET)
    assert caught.value.retryable
    assert caught.value.retry_after == pytest.approx(0.5)
    assert len(emulator.session_ids) == before


async def test_slow_get_times_out_and_is_retried(emulator: RunwayEmulator) -> None:
    # The timeout is far below the delay, and far above what an answered GET takes even on
    # a loaded machine.
    emulator.inject(delay=2.0, method="GET", path="/v1/avatars")
    async with RunwayClient(
        emulator.api_key, base_url=emulator.base_url, timeout=0.5, retry_base=0.01
    ) as client:
        page = await client.list_avatars()  # the retry is answered at once
    assert isinstance(page.data, list)
    emulator.inject(delay=2.0, method="GET", path="/v1/avatars", times=3)
    async with RunwayClient(
        emulator.api_key, base_url=emulator.base_url, timeout=0.5, retry_base=0.01
    ) as client:
        with pytest.raises(RunwayTimeout) as caught:
            await client.list_avatars()
    assert caught.value.retryable


class FailConnectOnce(httpx.AsyncBaseTransport):
    """Refuses the first connection (nothing was sent), then uses a real transport."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.refused == 0:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_create_is_retried_when_it_was_never_sent(emulator: RunwayEmulator) -> None:
    transport = FailConnectOnce()
    before = len(emulator.session_ids)
    async with RunwayClient(
        emulator.api_key, base_url=emulator.base_url, retry_base=0.01, transport=transport
    ) as client:
        session_id = await client.create_realtime_session(PRESET)
    assert transport.refused == 1
    assert len(emulator.session_ids) == before + 1
    assert session_id in emulator.session_ids


async def test_unreachable_server(emulator: RunwayEmulator) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    async with RunwayClient("k" * 16, base_url=f"http://127.0.0.1:{port}", retry_base=0.01) as c:
        with pytest.raises(RunwayConnectionError) as caught:
            await c.create_realtime_session(PRESET)
    assert caught.value.retryable
    assert "could not connect" in caught.value.message
    assert c.requests_sent == 3  # a refused connection sent nothing: safe to retry


async def test_conversation_and_avatar_pagination(
    client: RunwayClient, emulator: RunwayEmulator
) -> None:
    names = [f"Avatar {i}" for i in range(5)]
    ids = [emulator.add_avatar(name) for name in names]
    async with client:
        first = await client.list_avatars(limit=2)
        assert len(first.data) == 2
        assert first.next_cursor
        everything = [a async for a in client.iter_avatars(limit=2)]
        assert set(ids) <= {a.id for a in everything}
        one = await client.retrieve_avatar(ids[0])
        assert one.name == "Avatar 0"
        assert one.status == "READY"
        with pytest.raises(RunwayNotFound):
            await client.retrieve_avatar("nope")
        # conversations exist once a session ran
        for _ in range(3):
            emulator.plan_next(script=[{"say": "hi"}, {"hangup": True}], start_on="join")
            sid = await client.create_realtime_session(PRESET)
            await wait_status(client, sid, "READY")
            status = await client.retrieve_realtime_session(sid)
            assert status.session_key is not None
            key = status.session_key.get_secret_value()
            creds = await client.consume_realtime_session(sid, key)

            room = EmulatorRoom()
            await room.connect(creds.url, creds.token.get_secret_value())
            await room.wait_closed()
            await wait_status(client, sid, "COMPLETED")
        pages = await client.list_avatar_conversations(limit=2)
        assert len(pages.data) == 2
        assert pages.next_cursor
        listed = [c async for c in client.iter_avatar_conversations(limit=2)]
        assert len(listed) >= 3
        assert len({c.id for c in listed}) == len(listed)
        conversation = await client.retrieve_avatar_conversation(listed[0].id)
        assert conversation.transcript[0].content == "hi"
        with pytest.raises(RunwayBadRequest):
            await client.list_avatar_conversations(limit=1000)


def test_retry_after_parsing() -> None:
    assert _retry_after(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert _retry_after(httpx.Headers({"retry-after": "2"})) == 2.0
    assert _retry_after(httpx.Headers({"retry-after": "120"})) is None  # over 60 s: ignored
    assert _retry_after(httpx.Headers({"retry-after": "soon"})) is None
    date = _retry_after(httpx.Headers({"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"}))
    assert date is None  # far future: over 60 s
    assert _retry_after(httpx.Headers()) is None


def test_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    monkeypatch.delenv("RUNWAYML_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="no Runway API key"):
        RunwayClient()
    monkeypatch.setenv("RUNWAYML_API_SECRET", "key_" + "a" * 128)
    client = RunwayClient()
    assert client.base_url == "https://api.dev.runwayml.com"
    assert "a" * 128 not in repr(client)
    monkeypatch.setenv("RUNWAYML_BASE_URL", "http://127.0.0.1:9/")
    assert RunwayClient().base_url == "http://127.0.0.1:9"
    with pytest.raises(ConfigurationError, match="not an http"):
        RunwayClient(base_url="ftp://example.com")
