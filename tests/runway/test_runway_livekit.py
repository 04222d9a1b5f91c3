"""The LiveKit room's RPC handler, driven with the livekit package's own RPC types.

Joining a real LiveKit room needs a LiveKit server, which the tests do not have; the
handler chain (LiveKit ``RpcInvocationData`` in, reply or ``rtc.RpcError`` out, through
the session's tool invocation) is tested whole, in a real masquerade session.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from livekit import rtc

from masquerade import (
    ConfigurationError,
    Host,
    JoinCredentials,
    ProviderOutcome,
    SessionRequest,
    hookimpl,
)
from masquerade_runway import DataMessage, LiveKitRoom, RoomError
from masquerade_runway._tool_rpc import ToolEndpoint as _ToolEndpoint

from .tools_for_tests import lookup_order, slow_lookup

pytestmark = pytest.mark.anyio


def invocation(payload: Any, caller: str = "worker:avatar", request_id: str = "r1",
               timeout: float = 4.0) -> rtc.RpcInvocationData:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return rtc.RpcInvocationData(
        request_id=request_id, caller_identity=caller, payload=text, response_timeout=timeout
    )


class HandlerSession:
    """A provider session whose 'call' invokes the LiveKit handlers directly."""

    requires_polling = False

    def __init__(self, calls: Callable[[Callable[..., Any], Callable[..., Any]], Any]) -> None:
        self.id = "lk-1"
        self.calls = calls
        self.outcomes: dict[str, Any] = {}

    async def poll(self) -> Any:  # pragma: no cover - never polled
        raise AssertionError

    async def join_credentials(self) -> JoinCredentials:
        return JoinCredentials(provider="lk", kind="livekit")

    async def connect(self, session: Any) -> None:
        lookup = LiveKitRoom.rpc_handler(
            "lookup_order", _ToolEndpoint(session, "lookup_order", 4.0)
        )
        slow = LiveKitRoom.rpc_handler("slow_lookup", _ToolEndpoint(session, "slow_lookup", 1.0))
        await self.calls(lookup, slow)

    async def end(self, reason: str) -> None:
        pass

    async def result(self) -> ProviderOutcome:
        return ProviderOutcome()


class HandlerProvider:
    name = "lk"
    tool_dialect = "runway"

    def __init__(self, calls: Callable[..., Any]) -> None:
        self.calls = calls

    @property
    def __name__(self) -> str:
        return "lk-provider"

    async def create(self, request: SessionRequest) -> HandlerSession:
        return HandlerSession(self.calls)

    @hookimpl
    def masquerade_register_providers(self, register: Callable[[Any], None]) -> None:
        register(self)


async def test_rpc_handler_with_livekit_types(host_for: Callable[..., Host]) -> None:
    replies: dict[str, Any] = {}

    async def calls(lookup: Callable[..., Any], slow: Callable[..., Any]) -> None:
        replies["wrapped"] = await lookup(invocation({"args": {"order_id": "A1001"}}))
        replies["bare"] = await lookup(invocation({"order_id": "A1001"}, request_id="r2"))
        for name, data in {
            "intruder": invocation({"args": {"order_id": "A1001"}}, caller="user:eve",
                                   request_id="r3"),
            "raises": invocation({"args": {"order_id": "B2"}}, request_id="r4"),
            "not_json": invocation("{oops", request_id="r5"),
            "timeout": invocation({"args": {"seconds": 3}}, request_id="r6", timeout=0.3),
        }.items():
            handler = slow if name == "timeout" else lookup
            try:
                await handler(data)
            except rtc.RpcError as error:
                replies[name] = error

    async with host_for(HandlerProvider(calls)) as host:
        result = await host.run_session(
            SessionRequest(provider="lk", tools=[lookup_order, slow_lookup])
        )
    assert json.loads(replies["wrapped"]) == {"order_id": "A1001", "status": "shipped",
                                              "eta": "tomorrow"}
    assert replies["bare"] == replies["wrapped"]
    for name in ("intruder", "raises", "not_json", "timeout"):
        error = replies[name]
        assert isinstance(error, rtc.RpcError)
        assert error.code == rtc.RpcError.ErrorCode.APPLICATION_ERROR == 1500
    assert replies["intruder"].message == "Unauthorized caller: user:eve"
    assert replies["raises"].message == "no order B2"
    assert "JSON" in replies["not_json"].message or "object" in replies["not_json"].message
    assert "did not answer within 0.2" in replies["timeout"].message
    # every worker call got exactly one recorded answer; the intruder's never ran the tool
    assert sorted(r.call_id for r in result.tool_calls) == ["r1", "r2", "r4", "r5", "r6"]


async def test_data_packets_become_data_messages() -> None:
    room = LiveKitRoom()
    seen: list[DataMessage] = []
    room.on_data(seen.append)
    room._on_data(rtc.DataPacket(data=b'{"type":"x"}', kind=rtc.DataPacketKind.KIND_RELIABLE,
                                 participant=None, topic="t"))
    assert seen == [DataMessage(b'{"type":"x"}', None, "t")]
    assert not room.connected


async def test_livekit_room_needs_asyncio(anyio_backend: str) -> None:
    room = LiveKitRoom()
    if anyio_backend == "trio":
        with pytest.raises(ConfigurationError, match="needs asyncio"):
            await room.connect("wss://example.invalid", "token")
    else:
        with pytest.raises(RoomError, match="could not join the LiveKit room"):
            await room.connect("ws://127.0.0.1:9", "token-token")  # nothing listens there
