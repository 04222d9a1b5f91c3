"""Fixtures of the fault-injection suite: the real emulators over loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from masquerade import Poller
from masquerade_openai import OpenAIRealtimeProvider
from masquerade_openai.emulator import OpenAIRealtimeEmulator
from masquerade_runway import RunwayProvider
from masquerade_runway.emulator import RunwayEmulator

from .. import emulator_helpers
from ..emulator_helpers import OPENAI_FAST, fast_runway_provider, fresh_runway


@pytest.fixture(scope="module")
def runway_server() -> Iterator[RunwayEmulator]:
    with emulator_helpers.runway_server() as emulator:
        yield emulator


@pytest.fixture
def runway(runway_server: RunwayEmulator) -> Iterator[RunwayEmulator]:
    with fresh_runway(runway_server) as emulator:
        yield emulator


@pytest.fixture
def runway_provider(runway: RunwayEmulator) -> RunwayProvider:
    return fast_runway_provider(runway, timeout=5.0)


@pytest.fixture
def openai() -> Iterator[OpenAIRealtimeEmulator]:
    with OpenAIRealtimeEmulator() as emulator:
        yield emulator


@pytest.fixture
def openai_provider(openai: OpenAIRealtimeEmulator) -> OpenAIRealtimeProvider:
    return openai.provider(**OPENAI_FAST)


@pytest.fixture
def poller() -> Poller:
    return Poller(initial_interval=0.01, max_interval=0.05, queued_interval=0.1)
