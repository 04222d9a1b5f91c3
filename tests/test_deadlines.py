"""The host's one timer for every running session's max_duration."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from masquerade import SessionRequest, hookimpl
from masquerade._deadlines import Deadlines
from masquerade.provider import ProviderOutcome
from masquerade.testing import ScriptedProvider

pytestmark = pytest.mark.anyio


async def test_due_entries_fire_in_order_and_discarded_ones_never() -> None:
    deadlines = Deadlines()
    fired: list[str] = []
    both = anyio.Event()

    def late() -> None:
        fired.append("late")
        both.set()

    async with anyio.create_task_group() as tg:
        await tg.start(deadlines.run)
        now = anyio.current_time()
        deadlines.add(now + 0.06, late)
        dropped = deadlines.add(now + 0.02, lambda: fired.append("dropped"))
        deadlines.add(now + 0.01, lambda: fired.append("early"))  # wakes the sleep
        deadlines.discard(dropped)
        deadlines.discard(dropped)  # twice: no effect
        assert len(deadlines) == 2
        with anyio.fail_after(5):
            await both.wait()
        tg.cancel_scope.cancel()
    assert fired == ["early", "late"]
    assert deadlines.fired == 2
    assert len(deadlines) == 0


async def test_a_failing_callback_is_logged_and_the_others_still_fire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deadlines = Deadlines()
    fired = anyio.Event()

    def broken() -> None:
        raise RuntimeError("boom")

    async with anyio.create_task_group() as tg:
        await tg.start(deadlines.run)
        now = anyio.current_time()
        deadlines.add(now + 0.01, broken)
        deadlines.add(now + 0.03, fired.set)
        with anyio.fail_after(5):
            await fired.wait()
        tg.cancel_scope.cancel()
    assert deadlines.fired == 2
    assert "a deadline callback raised" in caplog.text


async def test_discarded_entries_do_not_pile_up() -> None:
    # A host that runs many short sessions: their entries are discarded long before
    # their time and must not stay in the heap until then.
    deadlines = Deadlines()
    far = anyio.current_time() + 3600
    entries = [deadlines.add(far, lambda: None) for _ in range(10_000)]
    for entry in entries[:9_990]:
        deadlines.discard(entry)
    assert len(deadlines) == 10
    assert len(deadlines._heap) <= 10 + 33
    assert all(e[2] is None for e in entries[:9_990])  # they refer to nothing


async def test_a_running_session_has_an_entry_until_it_ends_and_is_then_freed(
    make_host: Any,
) -> None:
    host = make_host(ScriptedProvider([{"say": "hi"}], hold_open=True))
    async with host:
        async with host.session(SessionRequest(provider="scripted", max_duration=600)) as s:
            with anyio.fail_after(10):
                while s.state != "running":
                    await s.wait_changed()
            assert len(host.deadlines) == 1
            s.end()
        assert len(host.deadlines) == 0
        ref = weakref.ref(s)
        del s
        await anyio.lowlevel.checkpoint()  # the finished task's done callback runs
        gc.collect()
        assert ref() is None


async def test_max_duration_ends_many_sessions_through_one_task(make_host: Any) -> None:
    host = make_host(ScriptedProvider([{"say": "hi"}], hold_open=True))
    request = SessionRequest(provider="scripted", max_duration=0.2)
    results: list[Any] = []

    async def one() -> None:
        async with host.session(request) as s:
            results.append(await s.wait())

    async with host:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for _ in range(50):
                    tg.start_soon(one)
    assert [r.reason for r in results] == ["deadline"] * 50
    assert host.deadlines.fired == 50
    assert len(host.deadlines) == 0


class _GatedProvider:
    """create and join_credentials wait until the test lets them go."""

    name = "gated"
    __name__ = "gated"

    def __init__(self) -> None:
        self.create_gate = anyio.Event()
        self.join_gate = anyio.Event()
        self.in_create = anyio.Event()
        self.in_join = anyio.Event()

    async def create(self, request: SessionRequest) -> Any:
        self.in_create.set()
        await self.create_gate.wait()
        return _GatedHandle(self)

    @hookimpl
    def masquerade_register_providers(self, register: Any) -> None:
        register(self)


class _GatedHandle:
    id = "gated-1"
    requires_polling = False

    def __init__(self, provider: _GatedProvider) -> None:
        self.provider = provider

    async def join_credentials(self) -> None:
        self.provider.in_join.set()
        await self.provider.join_gate.wait()

    async def connect(self, session: Any) -> None:
        await anyio.sleep_forever()

    async def end(self, reason: str) -> None:
        pass

    async def result(self) -> ProviderOutcome:
        return ProviderOutcome()


async def test_provisioning_bounds_are_entries_of_the_heap_not_timers(make_host: Any) -> None:
    # The create's and the join's bounds cost one heap entry each while they wait, and
    # nothing once the session runs (max_duration=None: no entry at all).
    provider = _GatedProvider()
    host = make_host(provider)
    request = SessionRequest(provider="gated", max_duration=None, provisioning_timeout=60)
    async with host, host.session(request) as s:
        with anyio.fail_after(10):
            await provider.in_create.wait()
            assert len(host.deadlines) == 1
            provider.create_gate.set()
            await provider.in_join.wait()
            assert len(host.deadlines) == 1
            provider.join_gate.set()
            while s.state != "running":
                await s.wait_changed()
        assert len(host.deadlines) == 0
        s.end()
    assert s.result is not None and s.result.reason == "ended"
