"""Concepts: a host, a plugin registered directly, and a broken plugin that is isolated."""

import anyio

from masquerade import Host, SessionRequest, hookimpl
from masquerade.testing import ScriptedProvider


class TranscriptPrinter:
    """A plugin is any object with @hookimpl functions named after hooks."""

    @hookimpl
    def masquerade_session_event(self, event):
        if event.type == "transcript.done":
            print(f"{event.role}: {event.text}")


class Misspelled:
    """Implements a hook that does not exist: reported as failed, never registered."""

    @hookimpl
    def masquerade_session_evnt(self, event):
        raise AssertionError("never called")


async def main() -> dict[str, str]:
    provider = ScriptedProvider([{"say": "Hello from a scripted provider."}])
    host = Host(plugins=[provider, TranscriptPrinter(), Misspelled()], load_entrypoints=False)
    for info in host.plugin_info():
        print(f"{info.name:20} {info.status:8} {', '.join(info.hooks) or info.error}")
    async with host:  # starts the host's poller
        result = await host.run_session(SessionRequest(provider="scripted"))
    print(result.outcome)
    return {info.name: info.status for info in host.plugin_info()}


if __name__ == "__main__":
    anyio.run(main)
