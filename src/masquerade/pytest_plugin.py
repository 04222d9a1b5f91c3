"""pytest fixtures for testing your own graphs, tools and plugins with masquerade.

Enable them in your ``conftest.py``::

    pytest_plugins = ["masquerade.pytest_plugin"]

then::

    @pytest.mark.anyio
    async def test_my_tool_is_called(masquerade_host, scripted_provider):
        provider = scripted_provider([{"tool": "lookup_order", "args": {"order_id": "A1"}}])
        async with masquerade_host(provider) as host:
            result = await host.run_session(
                SessionRequest(provider="scripted", tools=[lookup_order])
            )
        assert result.tool_calls[0].output["status"] == "shipped"

``masquerade_host(*plugins)`` builds a :class:`~masquerade.Host` without entry-point
plugins (so the machine's installed plugins do not leak into your tests) and with a fast
poller; ``scripted_provider(script, **options)`` builds a
:class:`~masquerade.testing.ScriptedProvider`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from .host import Host
from .poller import Poller
from .testing import ScriptedProvider, Step


@pytest.fixture
def masquerade_host() -> Callable[..., Host]:
    def make(*plugins: object, load_entrypoints: bool = False, **kwargs: Any) -> Host:
        kwargs.setdefault(
            "poller", Poller(initial_interval=0.01, max_interval=0.05, queued_interval=0.1)
        )
        return Host(plugins=plugins, load_entrypoints=load_entrypoints, **kwargs)

    return make


@pytest.fixture
def scripted_provider() -> Callable[..., ScriptedProvider]:
    def make(script: Sequence[Step | Mapping[str, Any]] = (), **options: Any) -> ScriptedProvider:
        return ScriptedProvider(script, **options)

    return make
