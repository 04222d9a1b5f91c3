"""The public pytest fixtures, used the way a user's conftest would."""

from __future__ import annotations

from typing import Any

import pytest

from masquerade import SessionRequest, tool

pytest_plugins = ["masquerade.pytest_plugin"]


@tool
def double(n: int) -> int:
    """Double a number."""
    return n * 2


@pytest.mark.anyio
async def test_fixtures_run_a_scripted_session(
    masquerade_host: Any, scripted_provider: Any
) -> None:
    provider = scripted_provider([{"tool": "double", "args": {"n": 21}}], queued_polls=2)
    async with masquerade_host(provider) as host:
        result = await host.run_session(SessionRequest(provider="scripted", tools=[double]))
    assert result.tool_calls[0].output == 42
    assert provider.sessions[0].polls == 3
    assert [i.name for i in host.plugin_info() if not i.builtin] == ["scripted-provider"]
