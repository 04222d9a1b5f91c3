"""An ended Runway session is freed by reference counting alone (no cycle collector),
even though the provider keeps its latest sessions for introspection."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from masquerade import Host, SessionRequest
from masquerade_runway import RunwayProvider
from masquerade_runway.emulator import RunwayEmulator

from .tools_for_tests import lookup_order

pytestmark = pytest.mark.anyio


@pytest.mark.usefixtures("no_cycle_collector")
async def test_ended_session_is_freed_by_refcount(
    emulator: RunwayEmulator, provider: RunwayProvider, host_for: Callable[..., Host]
) -> None:
    emulator.plan_next(
        provisioning=0.02,
        script=[
            {"say": "Hi! What is your order number?"},
            {"tool": "lookup_order", "args": {"order_id": "A1001"}},
            {"hangup": True},
        ],
    )
    request = SessionRequest(provider="runway", avatar="influencer", tools=[lookup_order])
    async with host_for(provider) as host:
        async with host.session(request) as session:
            async for _event in session.events():
                pass
        assert session.result is not None and session.result.tool_calls
        assert provider.sessions[-1].ended_with is not None  # still introspectable
        ref = weakref.ref(session)
        del session, _event
        await anyio.lowlevel.checkpoint()
        assert ref() is None
