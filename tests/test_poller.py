"""The shared poller: adaptive interval, queue back-off, retry-after, deadline, idle,
per-provider concurrency."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

from masquerade import Poller, ProviderError, ProvisioningStatus, ProvisioningTimeout
from masquerade.provider import ProviderOutcome


class FakeRemote:
    """A provider session whose status answers are scripted; records poll times."""

    requires_polling = True

    def __init__(self, answers: list[ProvisioningStatus | BaseException], *, delay: float = 0):
        self.id = "remote"
        self.answers = answers
        self.times: list[float] = []
        self.delay = delay
        self.active = 0
        self.peak = 0

    async def poll(self) -> ProvisioningStatus:
        self.times.append(anyio.current_time())
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.delay:
                await anyio.sleep(self.delay)
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        finally:
            self.active -= 1
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def join_credentials(self) -> None:
        return None

    async def connect(self, session: Any) -> None:
        return None

    async def end(self, reason: str) -> None:
        return None

    async def result(self) -> ProviderOutcome:
        return ProviderOutcome()


NOT_READY = ProvisioningStatus(state="not_ready", provider_status="NOT_READY")
QUEUED = ProvisioningStatus(state="not_ready", queued=True, provider_status="NOT_READY")
READY = ProvisioningStatus(state="ready", provider_status="READY")


async def run_poller(poller: Poller, fn: Any) -> Any:
    outcome: list[Any] = []
    async with anyio.create_task_group() as tg:
        await tg.start(poller.run)
        try:
            outcome.append(await fn())
        except Exception as exc:  # re-raised below, outside the task group
            outcome.append(exc)
        finally:
            tg.cancel_scope.cancel()
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.anyio
async def test_interval_grows_and_caps() -> None:
    poller = Poller(initial_interval=0.01, max_interval=0.04, growth=2.0)
    remote = FakeRemote([NOT_READY] * 6 + [READY])
    statuses: list[ProvisioningStatus] = []

    async def wait() -> ProvisioningStatus:
        return await poller.wait_ready(
            remote, session_id="s", provider="p", timeout=5, on_status=statuses.append
        )

    assert (await run_poller(poller, wait)).state == "ready"
    g = gaps(remote.times)
    assert len(remote.times) == 7
    assert g[0] < g[2]  # grows: 0.02, 0.04, ...
    assert max(g) < 0.04 * 3  # ...and stays capped
    assert [s.state for s in statuses] == ["not_ready", "ready"]  # only changes reported


@pytest.mark.anyio
async def test_queued_sessions_are_polled_more_slowly() -> None:
    poller = Poller(initial_interval=0.01, max_interval=0.02, queued_interval=0.12, growth=2.0)
    queued = FakeRemote([QUEUED] * 5 + [READY])
    plain = FakeRemote([NOT_READY] * 5 + [READY])

    async def both() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: poller.wait_ready(queued, session_id="q", provider="p", timeout=5)
            )
            tg.start_soon(lambda: poller.wait_ready(plain, session_id="n", provider="p", timeout=5))

    await run_poller(poller, both)
    assert max(gaps(queued.times)) > 0.05 > max(gaps(plain.times))


@pytest.mark.anyio
async def test_retry_after_is_honoured_and_errors_counted() -> None:
    poller = Poller(initial_interval=0.01, max_interval=0.02)
    remote = FakeRemote([ProviderError("429", retryable=True, retry_after=0.2), READY])

    async def wait() -> ProvisioningStatus:
        return await poller.wait_ready(remote, session_id="s", provider="p", timeout=5)

    assert (await run_poller(poller, wait)).state == "ready"
    assert gaps(remote.times)[0] >= 0.19
    assert poller.stats.errors == 1


@pytest.mark.anyio
async def test_non_retryable_error_fails_at_once() -> None:
    poller = Poller(initial_interval=0.01)
    remote = FakeRemote([ProviderError("404 unknown session", status_code=404), READY])

    async def wait() -> ProvisioningStatus:
        return await poller.wait_ready(remote, session_id="s", provider="p", timeout=5)

    with pytest.raises(ProviderError, match="404"):
        await run_poller(poller, wait)
    assert len(remote.times) == 1


@pytest.mark.anyio
async def test_deadline_raises_provisioning_timeout() -> None:
    poller = Poller(initial_interval=0.01, max_interval=0.02)
    remote = FakeRemote([QUEUED])

    async def wait() -> ProvisioningStatus:
        return await poller.wait_ready(remote, session_id="s1", provider="p", timeout=0.15)

    with pytest.raises(ProvisioningTimeout) as info:
        await run_poller(poller, wait)
    assert info.value.queued
    assert "s1" in str(info.value) and "queue" in str(info.value)
    assert poller.provisioning == 0


@pytest.mark.anyio
async def test_idle_poller_polls_nothing() -> None:
    poller = Poller(initial_interval=0.01)

    async def idle() -> None:
        await anyio.sleep(0.2)

    await run_poller(poller, idle)
    assert poller.stats.polls == 0
    assert poller.stats.wakeups == 0  # it slept on its event, no busy loop


@pytest.mark.anyio
async def test_concurrency_limit_per_provider() -> None:
    poller = Poller(initial_interval=0.01, concurrency=3)
    remotes = [FakeRemote([READY], delay=0.05) for _ in range(12)]

    async def all_ready() -> None:
        async with anyio.create_task_group() as tg:
            for i, r in enumerate(remotes):
                tg.start_soon(
                    lambda r=r, i=i: poller.wait_ready(
                        r, session_id=f"s{i}", provider="p", timeout=5
                    )
                )

    await run_poller(poller, all_ready)
    assert poller.stats.max_in_flight["p"] == 3
    assert poller.stats.polls == 12


@pytest.mark.anyio
async def test_not_running_is_a_clear_error() -> None:
    from masquerade import SessionError

    with pytest.raises(SessionError, match="Host"):
        await Poller().wait_ready(FakeRemote([READY]), session_id="s", provider="p", timeout=1)


@pytest.mark.anyio
@pytest.mark.parametrize("sessions", [10, 300])
async def test_work_per_poll_does_not_grow_with_sessions(sessions: int) -> None:
    """The schedule is a heap: a wakeup looks at due entries only, never at all of them."""
    poller = Poller(initial_interval=0.01, max_interval=0.02, concurrency=64)
    remotes = [FakeRemote([NOT_READY] * 3 + [READY]) for _ in range(sessions)]

    async def all_ready() -> None:
        async with anyio.create_task_group() as tg:
            for i, r in enumerate(remotes):
                tg.start_soon(
                    lambda r=r, i=i: poller.wait_ready(
                        r, session_id=f"s{i}", provider="p", timeout=30
                    )
                )

    await run_poller(poller, all_ready)
    assert poller.stats.polls == 4 * sessions
    assert poller.provisioning == 0
    # One look per poll (its due entry) plus at most one outdated item per poll: a
    # scan of every entry per wakeup would be ~sessions times more.
    assert poller.stats.examined <= 2 * poller.stats.polls
    assert poller.stats.wakeups <= 2 * poller.stats.polls + 10  # no wakeup per finished poll
