"""The plugin is found by entry point; an instance in code replaces it; env-var wiring."""

from __future__ import annotations

import pytest

from masquerade import Host, Poller, SessionRequest
from masquerade_runway import RunwayProvider
from masquerade_runway.emulator import RunwayEmulator


def test_entry_point_registers_the_runway_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)  # constructing never needs a key
    host = Host()
    info = {i.name: i for i in host.plugin_info()}
    assert info["runway"].status == "loaded"
    assert info["runway"].distribution == "masquerade-runway"
    provider = host.providers["runway"]
    assert isinstance(provider, RunwayProvider)
    assert provider.tool_dialect == "runway"


def test_an_instance_in_code_replaces_the_installed_plugin(emulator: RunwayEmulator) -> None:
    mine = emulator.provider()
    host = Host(plugins=[mine])  # entry points are loaded too
    assert host.providers["runway"] is mine
    assert not [i for i in host.plugin_info() if i.status == "failed" and i.name == "runway"]


@pytest.mark.anyio
async def test_environment_wiring_uses_the_advertised_room(
    emulator: RunwayEmulator, monkeypatch: pytest.MonkeyPatch, fast_poller: Poller
) -> None:
    # With only RUNWAYML_BASE_URL / RUNWAYML_API_SECRET set, the installed plugin talks to
    # the emulator, and joins its room because connect_backend advertises it.
    for name, value in emulator.environ().items():
        monkeypatch.setenv(name, value)
    emulator.plan_next(script=[{"say": "Configured from the environment"}, {"hangup": True}])
    async with Host(poller=fast_poller) as host:
        result = await host.run_session(SessionRequest(provider="runway", avatar="influencer"))
    assert result.outcome == "completed"
    assert [t.text for t in result.transcript] == ["Configured from the environment"]


def test_provider_rejects_unknown_rooms() -> None:
    with pytest.raises(ValueError, match="room must be"):
        RunwayProvider(room="webrtc")  # type: ignore[arg-type]
