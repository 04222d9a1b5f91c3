"""What the suites' emulator fixtures share: fast provider options, and one Runway
emulator per module reset between tests.

Plain functions and context managers (no fixtures), so each ``conftest.py`` keeps its own
fixture names while the logic stands in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from masquerade_runway import RunwayProvider
from masquerade_runway.emulator import RunwayEmulator

OPENAI_FAST: dict[str, Any] = {
    "open_timeout": 15.0,  # bounds against a hang only: a loaded machine can be slow
    "handshake_timeout": 15.0,
    "close_timeout": 1.0,
    "renewal": {"renew_after": None, "backoff_initial": 0.01, "backoff_max": 0.05},
}
"""OpenAI provider options for tests: a short close, fast reconnects, no proactive
renewal."""

RUNWAY_FAST_CLIENT: dict[str, Any] = {"retry_base": 0.01, "retry_max": 0.05}
"""Runway client options for tests: short retry backoff."""


@contextmanager
def runway_server() -> Iterator[RunwayEmulator]:
    """A Runway emulator with short provisioning. It runs on its own thread and loop, so
    one instance serves tests of both anyio backends."""
    with RunwayEmulator(plan={"provisioning": 0.02}) as emulator:
        yield emulator


def _reset(emulator: RunwayEmulator) -> None:
    emulator.clear_faults()
    with emulator.core.lock:
        emulator.core.plans.clear()


@contextmanager
def fresh_runway(server: RunwayEmulator) -> Iterator[RunwayEmulator]:
    """``server`` without faults or planned sessions, before and after the test."""
    _reset(server)
    try:
        yield server
    finally:
        _reset(server)


def fast_runway_provider(emulator: RunwayEmulator, **client_options: Any) -> RunwayProvider:
    """The emulator's provider with short retry backoff. ``end_grace`` and ``result_wait``
    only bound waits that end as soon as the emulator's thread recorded the end: generous,
    so END_CALL is never overtaken by DELETE on a loaded machine."""
    return emulator.provider(
        end_grace=5.0,
        result_wait=10.0,
        client_options={**RUNWAY_FAST_CLIENT, **client_options},
    )
