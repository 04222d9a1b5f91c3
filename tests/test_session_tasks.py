"""How many tasks a session costs: one while it is idle, more only while they are needed.

Thousands of idle sessions live in one process, so an idle session runs exactly one task
of its own (its run), with no task group and no helper task; a tool call or an async
observer starts a helper task when it needs one, and it is gone once it is done.
"""

from __future__ import annotations

import gc
import math
from collections import Counter
from collections.abc import Awaitable
from typing import Any

import anyio
import pytest

from masquerade import SessionRequest, hookimpl, tool
from masquerade.events import BaseEvent
from masquerade.provider import ProviderOutcome
from masquerade.testing import ScriptedProvider

pytestmark = pytest.mark.anyio

KINDS = {"SessionRun._run": "run", "Work._task": "work", "SessionRun._observer_loop": "observers"}


def task_groups() -> int:
    """Task groups alive (anyio's, whatever the backend)."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "TaskGroup"
               and type(o).__module__.startswith("anyio."))


def session_tasks() -> Counter[str]:
    """The running tasks of masquerade's sessions, by kind."""
    found: Counter[str] = Counter()
    for task in anyio.get_running_tasks():
        for suffix, kind in KINDS.items():
            if (task.name or "").endswith(suffix):
                found[kind] += 1
    return found


@tool
async def lookup(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order.
    """
    return f"order {order_id} shipped"


async def wait_until(check: Any) -> None:
    with anyio.fail_after(10):
        while not check():  # noqa: ASYNC110 (a bounded poll of state set elsewhere)
            await anyio.sleep(0.01)


async def test_an_idle_session_runs_one_task_and_no_group(make_host: Any) -> None:
    provider = ScriptedProvider([], hold_open=True)
    n = 3
    async with make_host(provider) as host, anyio.create_task_group() as tg:
        before = len(anyio.get_running_tasks())
        groups = task_groups()
        sessions: list[Any] = []

        async def hold() -> None:
            async with host.session(SessionRequest(provider="scripted")) as s:
                sessions.append(s)
                await s.wait()

        for _ in range(n):
            tg.start_soon(hold)
        await wait_until(lambda: len(sessions) == n and all(s.state == "running" for s in sessions))
        assert session_tasks() == Counter({"run": n})
        # Each session adds its holder's task and its own run: nothing else.
        assert len(anyio.get_running_tasks()) - before == 2 * n
        assert task_groups() == groups  # no task group per session
        for s in sessions:
            s.end()
    assert all(s.result.outcome == "completed" for s in sessions)
    assert session_tasks() == Counter()


async def test_a_tool_call_runs_in_a_task_that_ends_with_it(make_host: Any) -> None:
    script = [{"tool": "lookup", "args": {"order_id": "7"}}]
    provider = ScriptedProvider(script, hold_open=True)
    async with make_host(provider) as host:
        request = SessionRequest(provider="scripted", tools=[lookup])
        async with host.session(request) as s:
            async for event in s.events():
                if event.type == "tool.result":
                    break
            await wait_until(lambda: session_tasks()["work"] == 0)
            assert session_tasks() == Counter({"run": 1})
            s.end()
    assert s.result is not None and [c.output for c in s.result.tool_calls] == [
        "order 7 shipped"
    ]


async def test_an_async_observer_gets_its_task_only_when_it_returns_one(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "hello"}], hold_open=True)
    seen: list[str] = []
    asynchronous = False

    async def record(kind: str) -> None:
        seen.append(kind)

    def on_event(event: BaseEvent) -> Awaitable[None] | None:
        return record(event.type) if asynchronous else None

    async with make_host(provider) as host:
        async with host.session(SessionRequest(provider="scripted"), on_event=on_event) as s:
            await wait_until(lambda: s.state == "running")
            assert session_tasks() == Counter({"run": 1})
            asynchronous = True
            s.end()
        assert session_tasks() == Counter()
    assert seen and seen[-1] == "ended"


class _HangingCredentials:
    """A provider session whose join credentials never come."""

    id = "hanging-1"
    requires_polling = False

    def __init__(self) -> None:
        self.ended: list[str] = []

    async def poll(self) -> Any:
        raise AssertionError("not polled")

    async def join_credentials(self) -> None:
        await anyio.sleep_forever()

    async def connect(self, session: Any) -> None:
        raise AssertionError("never connected")

    async def end(self, reason: str) -> None:
        self.ended.append(reason)

    async def result(self) -> ProviderOutcome:
        return ProviderOutcome()


class _HangingProvider:
    name = "hanging"
    __name__ = "hanging"

    def __init__(self) -> None:
        self.sessions: list[_HangingCredentials] = []

    async def create(self, request: SessionRequest) -> _HangingCredentials:
        self.sessions.append(_HangingCredentials())
        return self.sessions[-1]

    @hookimpl
    def masquerade_register_providers(self, register: Any) -> None:
        register(self)


async def test_join_credentials_are_bounded_by_the_provisioning_timeout(make_host: Any) -> None:
    # The bound is the session's own scope (no scope of its own): past it the session
    # fails with a provisioning timeout, and its cancel path still ends it at the provider.
    provider = _HangingProvider()
    request = SessionRequest(provider="hanging", provisioning_timeout=0.2)
    with anyio.fail_after(10):
        result = await make_host(provider).run_session(request)
    assert result.outcome == "failed" and result.reason == "error"
    assert "still provisioning" in (result.failure or "")
    assert provider.sessions[0].ended == ["error"]
    assert result.provider_ended is True


def renewal_tasks() -> int:
    return sum(1 for t in anyio.get_running_tasks() if t.name == "openai session renewal")


def renewal_deadlines() -> int:
    """Cancel scopes whose deadline is at least 50 minutes away (renew_after's default is
    55 minutes; nothing else in these sessions waits that long)."""
    gc.collect()
    now = anyio.current_time()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "CancelScope"
               and type(o).__module__.startswith("anyio.")
               and 3000 < o.deadline - now < math.inf)


@pytest.mark.parametrize("max_duration", [300.0, None])
async def test_an_idle_openai_session_with_default_renewal_runs_one_task(
    fast_poller: Any, max_duration: float | None
) -> None:
    # Proactive renewal (on by default, after 55 minutes) is a deadline on the receive
    # loop, not a timer task per session; a session that max_duration ends first (the
    # default, 5 minutes) has no such deadline at all.
    masquerade_openai = pytest.importorskip("masquerade_openai")
    emulator_module = pytest.importorskip("masquerade_openai.emulator")
    from masquerade import Host

    with emulator_module.OpenAIRealtimeEmulator() as emulator:
        provider = emulator.provider(close_timeout=1.0, open_timeout=15.0,
                                     handshake_timeout=15.0)
        host = Host(plugins=[provider], load_entrypoints=False, poller=fast_poller)
        request = SessionRequest(provider="openai", max_duration=max_duration)
        async with host, host.session(request) as s:
            rt = await masquerade_openai.wait_realtime(s)
            assert rt.options.renewal.enabled and rt.options.renewal.renew_after
            await wait_until(lambda: s.state == "running")
            await wait_until(lambda: renewal_deadlines() == (max_duration is None))
            assert session_tasks() == Counter({"run": 1})
            assert renewal_tasks() == 0
            s.end()


async def test_a_renewal_task_exists_only_while_a_renewal_is_due(fast_poller: Any) -> None:
    masquerade_openai = pytest.importorskip("masquerade_openai")
    emulator_module = pytest.importorskip("masquerade_openai.emulator")
    from masquerade import Host

    with emulator_module.OpenAIRealtimeEmulator() as emulator:
        provider = emulator.provider(close_timeout=1.0, open_timeout=15.0,
                                     handshake_timeout=15.0,
                                     renewal={"renew_after": 0.5, "idle_grace": 1.0})
        host = Host(plugins=[provider], load_entrypoints=False, poller=fast_poller)
        async with host, host.session(SessionRequest(provider="openai")) as s:
            rt = await masquerade_openai.wait_realtime(s)
            assert renewal_tasks() == 0 and rt.reconnects == 0
            # Past the deadline, the receive loop starts the renewal task; it renews the
            # idle session and ends; the new socket gets its own deadline.
            await wait_until(lambda: rt.reconnects == 1)
            await wait_until(lambda: renewal_tasks() == 0)
            await wait_until(lambda: rt.reconnects == 2)
            await wait_until(lambda: renewal_tasks() == 0)
            assert session_tasks() == Counter({"run": 1})
            s.end()
        assert s.result is not None and s.result.outcome == "completed"
