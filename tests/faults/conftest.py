"""Fixtures of the fault-injection suite: the real emulators over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from masquerade import Poller
from masquerade_openai import OpenAIRealtimeProvider
from masquerade_openai.emulator import OpenAIRealtimeEmulator
from masquerade_runway import RunwayProvider
from masquerade_runway.emulator import RunwayEmulator


@pytest.fixture(scope="module")
def runway_server() -> Iterator[RunwayEmulator]:
    with RunwayEmulator(plan={"provisioning": 0.02}) as emulator:
        yield emulator


@pytest.fixture
def runway(runway_server: RunwayEmulator) -> Iterator[RunwayEmulator]:
    runway_server.clear_faults()
    with runway_server.core.lock:
        runway_server.core.plans.clear()
    yield runway_server
    runway_server.clear_faults()
    with runway_server.core.lock:
        runway_server.core.plans.clear()


@pytest.fixture
def runway_provider(runway: RunwayEmulator) -> RunwayProvider:
    return runway.provider(
        end_grace=1.0, result_wait=2.0,
        client_options={"retry_base": 0.01, "retry_max": 0.05, "timeout": 5.0},
    )


@pytest.fixture
def openai() -> Iterator[OpenAIRealtimeEmulator]:
    with OpenAIRealtimeEmulator() as emulator:
        yield emulator


OPENAI_FAST: dict[str, Any] = {
    "open_timeout": 5.0,
    "handshake_timeout": 5.0,
    "close_timeout": 1.0,
    "renewal": {"renew_after": None, "backoff_initial": 0.01, "backoff_max": 0.05},
}


@pytest.fixture
def openai_provider(openai: OpenAIRealtimeEmulator) -> OpenAIRealtimeProvider:
    return openai.provider(**OPENAI_FAST)


@pytest.fixture
def poller() -> Poller:
    return Poller(initial_interval=0.01, max_interval=0.05, queued_interval=0.1)
