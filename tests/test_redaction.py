"""The shared redaction: shapes, registered secrets, log records (including the
``websockets`` handshake at DEBUG over a real loopback connection)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import anyio
import pytest

from masquerade import RedactingFilter, redact, register_secret
from masquerade._redact import REDACTED, REDACTED_LOGGERS, is_secret_field, redact_mapping

RUNWAY_KEY = "key_" + "0123456789abcdef" * 8
OPENAI_KEY = "sk-proj-" + "A1b2C3d4" * 6
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ3b3JrZXI6MSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"using {RUNWAY_KEY} now", "using [redacted] now"),
        (f"key={OPENAI_KEY}", "key=[redacted]"),
        ("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "[redacted]"),
        (f"token {JWT}", "token [redacted]"),
        ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer [redacted]"),
        ("> Authorization: Basic dXNlcjpwYXNzd29yZA==", "> Authorization: Basic [redacted]"),
        ("x-api-key: 0a1b2c3d4e5f6a7b", "x-api-key: [redacted]"),
        ('{"api-key": "zzzzzzzzzzzz"}', '{"api-key": "[redacted]"}'),
        ("GET /v1/realtime?model=m&key=opaque-value-123 HTTP/1.1",
         "GET /v1/realtime?model=m&key=[redacted] HTTP/1.1"),
        ("wss://x/rtc?access_token=abcdefgh12345678", "wss://x/rtc?access_token=[redacted]"),
        # ordinary text stays as it is
        ("authorization failed: check your key", "authorization failed: check your key"),
        ("monkey_business key_ring sk-short", "monkey_business key_ring sk-short"),
    ],
)
def test_shapes(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_registered_secret_of_any_shape() -> None:
    secret = "plain words are secret too 3f9a"
    assert redact(f"before {secret} after") == f"before {secret} after"
    register_secret(secret)
    assert redact(f"before {secret} after") == f"before {REDACTED} after"
    register_secret("short")  # under 8 characters: ignored, it would mangle text
    assert redact("a short story") == "a short story"


def test_redact_mapping_and_secret_fields() -> None:
    data = {
        "sessionKey": "anything",
        "livekit": {"url": "wss://lk", "token": "t" * 12, "roomToken": "r" * 12},
        "usage": {"input_tokens": 12, "max_tokens": 4},
        "items": [f"Bearer {OPENAI_KEY}", 3, None],
        "session_key": None,
    }
    assert redact_mapping(data) == {
        "sessionKey": REDACTED,
        "livekit": {"url": "wss://lk", "token": REDACTED, "roomToken": REDACTED},
        "usage": {"input_tokens": 12, "max_tokens": 4},
        "items": [f"Bearer {REDACTED}", 3, None],
        "session_key": None,
    }
    assert is_secret_field("X-Api-Key")
    assert is_secret_field("client_secret")
    assert not is_secret_field("output_tokens")
    assert not is_secret_field("turn")


def test_redaction_is_installed_on_import() -> None:
    for name in ("websockets", "websockets.client", "websockets.server", "masquerade.session"):
        assert name in REDACTED_LOGGERS
        assert any(isinstance(f, RedactingFilter) for f in logging.getLogger(name).filters)


async def _websocket_round_trip(
    backend: str, url_path: str, headers: dict[str, str]
) -> list[str]:
    """Connect a websockets client to a websockets server on loopback; return what the
    server received in the handshake (so the test knows the headers were really sent)."""
    seen: list[str] = []
    if backend == "trio":  # websockets has one implementation per event loop
        from websockets.trio.client import connect as trio_connect
        from websockets.trio.server import serve as trio_serve

        async def trio_handler(ws: Any) -> None:
            seen.append(ws.request.headers["Authorization"])
            await ws.send(await ws.recv())

        import trio

        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(trio_serve, trio_handler, 0,
                                                           host="127.0.0.1"))
            port = server.listeners[0].socket.getsockname()[1]
            async with trio_connect(f"ws://127.0.0.1:{port}{url_path}",
                                    additional_headers=headers) as ws:
                await ws.send("ping")
                assert await ws.recv() == "ping"
            await server.aclose()
        return seen

    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def handler(ws: Any) -> None:
        seen.append(ws.request.headers["Authorization"])
        await ws.send(await ws.recv())

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}{url_path}", additional_headers=headers) as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
    return seen


@pytest.mark.anyio
async def test_websockets_debug_handshake_never_shows_credentials(
    caplog: pytest.LogCaptureFixture, anyio_backend: str
) -> None:
    bearer = "c4n4ry" + "0f" * 16  # no registered secret: masked by its header alone
    api_key = "opaque-api-key-value-9f8e7d"
    query_key = "query-key-value-0a1b2c3d"
    caplog.set_level(logging.DEBUG, logger="websockets")
    with anyio.fail_after(10):
        seen = await _websocket_round_trip(
            anyio_backend,
            f"/v1/realtime?model=m&key={query_key}",
            {"Authorization": f"Bearer {bearer}", "X-Api-Key": api_key},
        )
    assert seen == [f"Bearer {bearer}"]  # the credentials really went over the wire
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("websockets")]
    assert "> Authorization: Bearer [redacted]" in lines  # websockets did log the header
    assert "> X-Api-Key: [redacted]" in lines
    text = "\n".join(lines)
    for secret in (bearer, api_key, query_key):
        assert secret not in text
