"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from masquerade import Host, Poller


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fast_poller() -> Poller:
    """A poller with short intervals so provisioning tests take milliseconds."""
    return Poller(initial_interval=0.01, max_interval=0.05, queued_interval=0.1)


@pytest.fixture
def make_host(fast_poller: Poller):  # type: ignore[no-untyped-def]
    """Build a Host without entry-point plugins: ``make_host(plugin, ...)``."""

    def make(*plugins: object, **kwargs: object) -> Host:
        kwargs.setdefault("load_entrypoints", False)
        kwargs.setdefault("poller", fast_poller)
        return Host(plugins=plugins, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    """The cycle collector off for the test: what it frees, only reference counting did."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
