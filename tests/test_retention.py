"""Bounded retention: what a session keeps for late subscribers and its result, and that
an ended session is freed by reference counting alone (no cycle collector needed)."""

from __future__ import annotations

import weakref
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from masquerade import SessionRequest, tool
from masquerade.events import BaseEvent
from masquerade.testing import ScriptedProvider

TALK = [{"say": "one two three four five six", "role": "assistant"}] * 40


@tool
async def lookup(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order.
    """
    return f"order {order_id} shipped"


def kinds(events: list[BaseEvent]) -> list[str]:
    return [e.type for e in events]


async def late_replay(make_host: Any, request: SessionRequest) -> tuple[list[BaseEvent], Any]:
    """Run a scripted session to its end; return what a subscriber joining then gets."""
    script = [*TALK, {"tool": "lookup", "args": {"order_id": "7"}}, {"wait": 0.01}]
    provider = ScriptedProvider(script)
    async with make_host(provider).session(request) as session:
        await session.wait()
        replayed = [e async for e in session.events()]
    return replayed, session


@pytest.mark.anyio
async def test_late_subscriber_gets_the_compact_record(make_host: Any) -> None:
    request = SessionRequest(provider="scripted", tools=[lookup])
    replayed, session = await late_replay(make_host, request)
    # 40 turns of deltas were emitted; only finished turns, tools and lifecycle are kept.
    assert "transcript.delta" not in kinds(replayed)
    assert kinds(replayed).count("transcript.done") == 40
    assert kinds(replayed).count("tool.call") == kinds(replayed).count("tool.result") == 1
    assert kinds(replayed)[0] == "status" and kinds(replayed)[-1] == "ended"
    assert "ready" in kinds(replayed)
    assert len(session.result.transcript) == 40
    assert [c.name for c in session.result.tool_calls] == ["lookup"]


@pytest.mark.anyio
async def test_full_history_is_opt_in_and_bounded(make_host: Any) -> None:
    request = SessionRequest(provider="scripted", tools=[lookup], history=50)
    replayed, _ = await late_replay(make_host, request)
    window = replayed[-50:]
    # The last 50 events of every kind (deltas included)...
    assert "transcript.delta" in kinds(window)
    # ...after the compact record of everything older, in order, nothing twice.
    older = replayed[:-50]
    assert "transcript.delta" not in kinds(older)
    assert kinds(older)[0] == "status" and "ready" in kinds(older)
    assert len(replayed) == len(older) + 50
    assert kinds(replayed).count("transcript.done") == 40
    assert kinds(replayed)[-1] == "ended"


@pytest.mark.anyio
@pytest.mark.usefixtures("no_cycle_collector")
@pytest.mark.parametrize(
    "ending",
    [
        [{"hangup": True}],
        [{"fail": "the line dropped"}],
        [{"event": {"type": "error", "code": "boom", "message": "fatal", "fatal": True}}],
        [{"wait": 30}],  # ended from outside
    ],
    ids=["completed", "provider-failure", "fatal-error", "ended-by-caller"],
)
async def test_ended_session_is_freed_by_refcount(
    make_host: Any, ending: list[dict[str, Any]]
) -> None:
    script = [*TALK[:3], {"tool": "lookup", "args": {"order_id": "7"}}, {"audio": 5}, *ending]
    provider = ScriptedProvider(script)
    host = make_host(provider)
    async with host:
        async with host.session(SessionRequest(provider="scripted", tools=[lookup])) as s:
            async for event in s.events():
                if event.type == "tool.result":
                    with anyio.move_on_after(0.05):
                        await s.wait()
                    s.end()
        ref = weakref.ref(s)
        result = s.result
        del s
        await anyio.lowlevel.checkpoint()
        assert ref() is None
    assert result is not None and result.tool_calls
