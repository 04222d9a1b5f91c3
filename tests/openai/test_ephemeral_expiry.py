"""Ephemeral keys (``ek_...``) expire: minted with the requested lifetime, refused once
it has passed (a 401 with an error body before the upgrade, or, the other answer a
client must handle, an ``error`` event and a close after it), and masquerade says so
without showing the key.

The emulator's clock moves forward (``advance_clock``) instead of the test sleeping.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from masquerade import Host, ProviderError, SessionRequest
from masquerade_openai import OpenAIRealtimeProvider, RealtimeCalls, wait_realtime
from masquerade_openai.emulator import OpenAIRealtimeEmulator

from ..emulator_helpers import OPENAI_FAST
from .test_browser import OFFER

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.anyio


async def mint(emulator: OpenAIRealtimeEmulator, seconds: int | None = None) -> tuple[str, int]:
    """A fresh ephemeral key from the emulator (through masquerade) and its expiry."""
    calls = RealtimeCalls(api_key=emulator.api_key, base_url=emulator.base_url)
    try:
        secret = await calls.client_secret({"type": "realtime"}, expires_after_s=seconds)
    finally:
        await calls.aclose()
    return secret.value.get_secret_value(), secret.expires_at


#: The official SDK and ``websockets.asyncio`` run on asyncio only.
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


@pytest.fixture
async def client(emulator: OpenAIRealtimeEmulator) -> AsyncIterator[Any]:
    async with openai.AsyncOpenAI(api_key=emulator.api_key, base_url=emulator.base_url) as c:
        yield c


@asyncio_only
async def test_minting_honours_the_requested_lifetime(
    emulator: OpenAIRealtimeEmulator, client: Any
) -> None:
    before = int(time.time())
    secret = await client.realtime.client_secrets.create(
        expires_after={"anchor": "created_at", "seconds": 45}, session={"type": "realtime"}
    )
    default = await client.realtime.client_secrets.create(session={"type": "realtime"})
    after = int(time.time())
    assert before + 45 <= secret.expires_at <= after + 45
    assert before + 600 <= default.expires_at <= after + 600  # ten minutes by default
    value, expires_at = await mint(emulator, 30)  # masquerade's client asks the same way
    assert value.startswith("ek_")
    assert before + 30 <= expires_at <= int(time.time()) + 30
    with pytest.raises(openai.BadRequestError):
        await client.realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": 5}, session={"type": "realtime"}
        )


@asyncio_only
async def test_the_sdk_uses_a_fresh_key_and_is_refused_an_expired_one(
    emulator: OpenAIRealtimeEmulator, client: Any
) -> None:
    secret = await client.realtime.client_secrets.create(
        expires_after={"anchor": "created_at", "seconds": 10}, session={"type": "realtime"}
    )
    async with openai.AsyncOpenAI(api_key=secret.value, base_url=emulator.base_url) as frontend:
        async with frontend.realtime.connect(model="gpt-realtime") as conn:
            assert (await conn.recv()).type == "session.created"
        emulator.advance_clock(11)
        with pytest.raises(InvalidStatus) as refused:
            async with frontend.realtime.connect(model="gpt-realtime") as conn:
                await conn.recv()
        assert refused.value.response.status_code == 401
        body = json.loads(refused.value.response.body or b"{}")
        assert body["error"]["code"] == "invalid_api_key"
        assert secret.value not in body["error"]["message"]
        # Creating a call with it is refused the same way.
        with pytest.raises(openai.AuthenticationError):
            await frontend.realtime.calls.create(sdp=OFFER, session={"type": "realtime"})
    # The API key is not affected by the clock.
    async with client.realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"


@asyncio_only
async def test_an_open_session_outlives_its_key(emulator: OpenAIRealtimeEmulator) -> None:
    key, _ = await mint(emulator, 10)
    url = f"{emulator.websocket_url}?model=gpt-realtime"
    protocols: list[Any] = ["realtime", f"openai-insecure-api-key.{key}"]
    async with connect(url, subprotocols=protocols) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        emulator.advance_clock(3600)
        await ws.send(json.dumps({"type": "response.create"}))
        while (event := json.loads(await ws.recv()))["type"] != "response.done":
            assert event["type"] != "error", event
    with pytest.raises(InvalidStatus) as refused:  # a new connection is refused
        async with connect(url, subprotocols=protocols):
            pass
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize("refusal", ["http", "event"])
async def test_masquerade_refused_an_expired_key_says_so_without_the_key(
    emulator: OpenAIRealtimeEmulator, host_for: Callable[..., Host], refusal: str
) -> None:
    emulator.expired_key_refusal = refusal
    key, _ = await mint(emulator, 10)
    provider = OpenAIRealtimeProvider(api_key=key, base_url=emulator.base_url, **OPENAI_FAST)
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        await wait_realtime(s)  # works while fresh
        s.end()
    emulator.advance_clock(10)
    with pytest.raises(ProviderError) as info:
        await provider.create(SessionRequest(provider="openai"))
    error = info.value
    assert error.code == "invalid_api_key"
    assert not error.retryable
    assert error.status_code == (401 if refusal == "http" else None)
    assert "ephemeral key" in (error.hint or "") and "expires" in (error.hint or "")
    for shown in (str(error), repr(error), error.message, error.hint or ""):
        assert key not in shown
    async with host_for(provider) as host:
        result = await host.run_session(SessionRequest(provider="openai"))
    assert result.outcome == "failed"
    assert result.failure_code == "invalid_api_key"
    assert key not in result.model_dump_json()
