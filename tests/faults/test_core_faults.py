"""Fault scenarios of user and plugin code around a real session (Runway emulator): every
await on it is bounded, and nothing it does crashes the session."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from masquerade import Poller, Session, SessionRequest, SessionResult, hookimpl
from masquerade.events import BaseEvent, ProviderEvent
from masquerade_runway import RunwayProvider
from masquerade_runway.emulator import RunwayEmulator

from ..otel_helpers import Otel
from .harness import check_runway, run_session, wait_for
from .tools import lookup_order

pytestmark = pytest.mark.anyio

HANGUP = {"hangup": True}


def request(**fields: Any) -> SessionRequest:
    fields.setdefault("provider", "runway")
    fields.setdefault("avatar", "influencer")
    fields.setdefault("end_timeout", 5.0)
    fields.setdefault("tools", [lookup_order])
    return SessionRequest(**fields)


class HangingEnded:
    """An async ``masquerade_session_ended`` that never returns."""

    def __init__(self) -> None:
        self.started = 0

    @hookimpl
    def masquerade_session_ended(self, session: Session, result: SessionResult) -> Any:
        async def hang() -> None:
            self.started += 1
            await anyio.sleep_forever()

        return hang()


async def test_c01_hanging_session_ended_hook_is_bounded(
        runway: RunwayEmulator, runway_provider: RunwayProvider, poller: Poller) -> None:
    runway.plan_next(script=[{"say": "hi"}, HANGUP])
    hanging = HangingEnded()
    run = await run_session(request(hook_timeout=0.3), runway_provider, hanging, poller=poller)
    check_runway(run, runway)
    assert hanging.started == 1
    assert any(r.levelno == logging.ERROR and "hook_timeout" in r.getMessage() for r in run.logs)


class HangingObserver:
    @hookimpl
    def masquerade_session_event(self, session: Session, event: BaseEvent) -> Any:
        if event.type == "ready":
            return anyio.sleep_forever()
        return None


async def test_c02_hanging_async_observer_is_bounded(
        runway: RunwayEmulator, runway_provider: RunwayProvider, poller: Poller) -> None:
    runway.plan_next(script=[{"say": "hi"}, HANGUP])
    run = await run_session(request(hook_timeout=0.3), runway_provider, HangingObserver(),
                            poller=poller)
    check_runway(run, runway)
    assert run.result.outcome == "completed"


@pytest.mark.parametrize(
    "callback",
    [
        pytest.param(lambda e: _raise_async(), id="async-raises"),
        pytest.param(lambda e: 42, id="returns-non-awaitable"),
        pytest.param(lambda e: 1 / 0, id="raises"),
        pytest.param(lambda e: anyio.sleep_forever(), id="async-hangs"),
    ],
)
async def test_c03_on_event_callback_is_isolated_like_a_plugin(
        runway: RunwayEmulator, runway_provider: RunwayProvider, poller: Poller,
        callback: Any) -> None:
    runway.plan_next(script=[{"tool": "lookup_order", "args": {"order_id": "A1"}},
                             {"say": "hi"}, HANGUP])
    run = await run_session(request(hook_timeout=0.1), runway_provider, poller=poller,
                            on_event=callback)
    check_runway(run, runway)
    assert run.result.outcome == "completed"
    assert [t.text for t in run.result.transcript if t.text] == ["hi"]


async def _raise_async() -> None:
    raise RuntimeError("the user's callback failed")


async def test_c04_concurrent_publishers_all_resume(
        runway: RunwayEmulator, runway_provider: RunwayProvider, poller: Poller) -> None:
    runway.plan_next(script=[{"say": "hi"}])
    published: list[int] = []

    async def act(session: Session, events: list[BaseEvent]) -> None:
        await wait_for(lambda: session.state == "running")
        session.max_buffer = 10
        stalled = session.events(replay=False)
        stalled.__aiter__()

        async def publisher(n: int) -> None:
            for i in range(30):
                await session.publish(ProviderEvent(name="test.pub", payload={"p": n, "i": i}))
            published.append(n)

        async with anyio.create_task_group() as tg:
            tg.start_soon(publisher, 1)
            tg.start_soon(publisher, 2)
            await wait_for(lambda: stalled._sub is not None and len(stalled._sub.buffer) >= 10)
            assert published == []  # both wait for the reader
            while len(published) < 2:  # read until both publishers are through
                with anyio.move_on_after(0.05):
                    await stalled.__anext__()
        await stalled.aclose()
        session.end()

    run = await run_session(request(), runway_provider, poller=poller, act=act)
    check_runway(run, runway)
    assert sorted(published) == [1, 2]


async def test_c05_stalled_subscriber_pauses_the_runway_room_reader(
        runway: RunwayEmulator, runway_provider: RunwayProvider, poller: Poller) -> None:
    limit = 20
    flood = [{"data": {"type": "test.flood", "i": i}} for i in range(limit * 4)]
    runway.plan_next(script=[{"wait": 0.3}, *flood, {"say": "done"}])
    peak: list[int] = []

    async def act(session: Session, events: list[BaseEvent]) -> None:
        await wait_for(lambda: session.state == "running")
        session.max_buffer = limit
        stalled = session.events(replay=False)
        stalled.__aiter__()
        await anyio.sleep(0.8)
        assert stalled._sub is not None
        peak.append(len(stalled._sub.buffer))
        async for event in stalled:
            if event.type == "transcript.delta":
                break
        await stalled.aclose()
        session.end()

    run = await run_session(request(), runway_provider, poller=poller, act=act)
    check_runway(run, runway)
    assert peak and peak[0] <= limit + 1
    assert len([e for e in run.events if getattr(e, "name", "") == "test.flood"]) == limit * 4


async def test_c06_unended_session_sets_the_span_status(
        runway: RunwayEmulator, runway_provider: RunwayProvider, poller: Poller,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.trace import StatusCode

    monkeypatch.setenv("MASQUERADE_DISABLE_PLUGINS", "tracing")
    otel = Otel()
    runway.plan_next(provisioning=30)
    runway.inject(status=500, method="DELETE", times=10_000)

    async def act(session: Session, events: list[BaseEvent]) -> None:
        await wait_for(lambda: session.provider_session_id is not None)
        await anyio.sleep(0.05)
        session.end("user went away")

    run = await run_session(request(end_timeout=1.0), runway_provider, otel.plugin(),
                            poller=poller, act=act)
    runway.clear_faults()
    check_runway(run, runway, expect_unended=True)
    assert run.result.provider_ended is False
    [span] = otel.named("invoke_agent")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["masquerade.session.provider_ended"] is False
    await runway_provider.client().delete_realtime_session(run.result.provider_session_id)


class HangingCreate:
    """A ``masquerade_session_create`` wrapper that never lets the create finish."""

    @hookimpl(wrapper=True)
    def masquerade_session_create(self, request: SessionRequest) -> Any:
        inner = yield

        async def hang() -> Any:
            if hasattr(inner, "close"):
                inner.close()  # the provider's create never starts
            await anyio.sleep_forever()

        return hang()


async def test_c07_hanging_session_create_wrapper_is_bounded_by_provisioning_timeout(
        runway: RunwayEmulator, runway_provider: RunwayProvider, poller: Poller) -> None:
    before = set(runway.session_ids)
    run = await run_session(request(provisioning_timeout=0.3), runway_provider, HangingCreate(),
                            poller=poller, bound=10.0)
    check_runway(run, runway)
    assert run.result.outcome == "failed"
    assert run.result.provider_session_id is None and run.result.provider_ended is None
    assert "provisioning" in (run.result.failure or "")
    assert set(runway.session_ids) == before  # nothing was created, nothing left running
