"""Fixtures for the OpenAI plugin's tests: a fresh loopback emulator per test.

The emulator runs on its own thread and asyncio loop, so the same fixture serves tests on
both anyio backends. Sessions use short timeouts and no proactive renewal unless a test
asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from masquerade import Host, Poller
from masquerade_openai import OpenAIRealtimeProvider
from masquerade_openai.emulator import OpenAIRealtimeEmulator

from ..emulator_helpers import OPENAI_FAST as FAST
from .helpers import EventRecorder


@pytest.fixture
def emulator() -> Iterator[OpenAIRealtimeEmulator]:
    with OpenAIRealtimeEmulator() as emu:
        yield emu


@pytest.fixture
def provider_for(emulator: OpenAIRealtimeEmulator) -> Callable[..., OpenAIRealtimeProvider]:
    def make(**options: Any) -> OpenAIRealtimeProvider:
        merged = {**FAST, **options}
        if "renewal" in options:
            merged["renewal"] = {**FAST["renewal"], **options["renewal"]}
        return emulator.provider(**merged)

    return make


@pytest.fixture
def provider(provider_for: Callable[..., OpenAIRealtimeProvider]) -> OpenAIRealtimeProvider:
    return provider_for()


@pytest.fixture
def host_for(fast_poller: Poller) -> Callable[..., Host]:
    def make(*plugins: object) -> Host:
        # The recorder lets ``collect`` read every event from the start.
        return Host(
            plugins=[*plugins, EventRecorder()], load_entrypoints=False, poller=fast_poller
        )

    return make
