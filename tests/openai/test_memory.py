"""An ended OpenAI session is freed by reference counting alone (no cycle collector)."""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

import masquerade_openai
from masquerade import Host, SessionClosed, SessionRequest
from masquerade_openai import OpenAIRealtimeProvider

from .helpers import collect, count, lookup_order

pytestmark = pytest.mark.anyio


@pytest.mark.usefixtures("no_cycle_collector")
async def test_ended_session_is_freed_by_refcount(
    provider: OpenAIRealtimeProvider, host_for: Callable[..., Host]
) -> None:
    async with host_for(provider) as host:
        request = SessionRequest(provider="openai", tools=[lookup_order])
        async with host.session(request) as s:
            rt = await masquerade_openai.wait_realtime(s)
            await rt.send_text('call lookup_order {"order_id": "A7"}')
            await collect(s, count("response.done", 2))
            s.end()
        assert s.result is not None and s.result.tool_calls
        refs = [weakref.ref(s), weakref.ref(rt)]
        del s, rt
        await anyio.lowlevel.checkpoint()
        alive = [r() for r in refs if r() is not None]
        assert not alive, [type(o).__name__ for o in alive]


async def test_an_open_connection_keeps_no_handshake_headers(
    provider: OpenAIRealtimeProvider, host_for: Callable[..., Host]
) -> None:
    # websockets keeps the handshake's request and response for the connection's life:
    # two header maps per idle session, one of them with the Authorization header.
    async with host_for(provider) as host, host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        ws = rt._link.ws
        connection = getattr(ws, "_connection", ws)  # trio's wrapper, or the connection
        assert connection.request is None
        assert connection.response is not None and not connection.response.headers
        await rt.send_text("hello")  # the connection still works
        await collect(s, count("response.done"))
        s.end()


async def test_sessions_configured_alike_share_one_configuration(
    provider: OpenAIRealtimeProvider, host_for: Callable[..., Host]
) -> None:
    # Each session keeps the configuration the server confirmed; sessions configured
    # alike share one private copy of it, which what observers do to the events cannot
    # change.
    def vandal(event: object) -> None:
        payload = getattr(event, "payload", None)
        if isinstance(payload, dict) and payload.get("type") == "session.updated":
            payload["session"]["instructions"] = "changed by an observer"
            payload["session"]["audio"]["output"]["voice"] = "changed by an observer"

    request = SessionRequest(provider="openai", personality="Be brief.")
    async with (
        host_for(provider) as host,
        host.session(request, on_event=vandal) as a,
        host.session(request) as b,
    ):
        rt_a = await masquerade_openai.wait_realtime(a)
        rt_b = await masquerade_openai.wait_realtime(b)
        await collect(a, count("provider", 2))  # the handshake's events reached vandal
        assert rt_a._link._session_config is rt_b._link._session_config
        for rt in (rt_a, rt_b):
            config = rt.session_config
            assert config["instructions"] == "Be brief."
            assert "changed by an observer" not in json.dumps(config)
            assert config["id"] == rt.id  # each keeps its own id
            config["instructions"] = "a reader's copy"  # a fresh copy per read
            assert rt.session_config["instructions"] == "Be brief."
        assert rt_a.session_config["id"] != rt_b.session_config["id"]
        a.end()
        b.end()


async def test_wait_realtime_waits_without_subscribing_and_reports_the_end(
    provider: OpenAIRealtimeProvider, host_for: Callable[..., Host]
) -> None:
    async with host_for(provider) as host:
        async with host.session(SessionRequest(provider="openai")) as s:
            rt = await masquerade_openai.wait_realtime(s)
            assert not s._subs  # no subscriber was left behind (none was made)
            s.end()
        with pytest.raises(SessionClosed, match="has ended"):
            await masquerade_openai.wait_realtime(s)
    assert rt is not None
    failing = OpenAIRealtimeProvider(api_key="sk-test", base_url="http://127.0.0.1:9")
    async with host_for(failing) as host, host.session(SessionRequest(provider="openai")) as s:
        with pytest.raises(SessionClosed, match="ended before it was ready"):
            await masquerade_openai.wait_realtime(s)
