"""Fixtures for the Runway plugin's tests: one emulator per module, reset between tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from masquerade import Host, Poller
from masquerade_runway import RunwayClient, RunwayProvider
from masquerade_runway.emulator import RunwayEmulator


@pytest.fixture(scope="module")
def emulator_server() -> Iterator[RunwayEmulator]:
    # The emulator runs on its own thread and loop, so one instance serves tests of both
    # anyio backends.
    with RunwayEmulator(plan={"provisioning": 0.02}) as emulator:
        yield emulator


@pytest.fixture
def emulator(emulator_server: RunwayEmulator) -> Iterator[RunwayEmulator]:
    emulator_server.clear_faults()
    with emulator_server.core.lock:
        emulator_server.core.plans.clear()
    yield emulator_server
    emulator_server.clear_faults()
    with emulator_server.core.lock:
        emulator_server.core.plans.clear()


FAST_CLIENT: dict[str, Any] = {"retry_base": 0.01, "retry_max": 0.05}


@pytest.fixture
def provider(emulator: RunwayEmulator) -> RunwayProvider:
    return emulator.provider(end_grace=1.0, result_wait=2.0, client_options=FAST_CLIENT)


@pytest.fixture
def client(emulator: RunwayEmulator) -> RunwayClient:
    return RunwayClient(emulator.api_key, base_url=emulator.base_url, **FAST_CLIENT)


@pytest.fixture
def host_for(fast_poller: Poller) -> Callable[..., Host]:
    def make(*plugins: object) -> Host:
        return Host(plugins=plugins, load_entrypoints=False, poller=fast_poller)

    return make
