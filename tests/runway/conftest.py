"""Fixtures for the Runway plugin's tests: one emulator per module, reset between tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from masquerade import Host, Poller
from masquerade_runway import RunwayClient, RunwayProvider
from masquerade_runway.emulator import RunwayEmulator

from ..emulator_helpers import RUNWAY_FAST_CLIENT, fast_runway_provider, fresh_runway, runway_server


@pytest.fixture(scope="module")
def emulator_server() -> Iterator[RunwayEmulator]:
    with runway_server() as emulator:
        yield emulator


@pytest.fixture
def emulator(emulator_server: RunwayEmulator) -> Iterator[RunwayEmulator]:
    with fresh_runway(emulator_server) as emulator:
        yield emulator


@pytest.fixture
def provider(emulator: RunwayEmulator) -> RunwayProvider:
    return fast_runway_provider(emulator)


@pytest.fixture
def client(emulator: RunwayEmulator) -> RunwayClient:
    return RunwayClient(emulator.api_key, base_url=emulator.base_url, **RUNWAY_FAST_CLIENT)


@pytest.fixture
def host_for(fast_poller: Poller) -> Callable[..., Host]:
    def make(*plugins: object) -> Host:
        return Host(plugins=plugins, load_entrypoints=False, poller=fast_poller)

    return make
