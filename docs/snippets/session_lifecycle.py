"""Concepts: a session's states, its events, ending it early, and its result."""

import anyio

from masquerade import Host, Poller, SessionRequest
from masquerade.testing import ScriptedProvider


async def main() -> list[str]:
    provider = ScriptedProvider(
        [
            {"say": "Hello! This call could go on forever."},
            {"client_event": "show_menu", "args": {"page": 1}},
        ],
        queued_polls=2,  # the provider holds the session in its capacity queue at first
        not_ready_polls=1,
        hold_open=True,  # after the script, the call stays open until it is ended
    )
    poller = Poller(initial_interval=0.01, max_interval=0.05)
    seen: list[str] = []
    async with Host(plugins=[provider], load_entrypoints=False, poller=poller) as host:
        request = SessionRequest(provider="scripted", max_duration=60)
        async with host.session(request) as session:
            async for event in session.events():
                if event.type == "status":
                    word = event.state
                    if event.provider_status:  # the provider's own word, e.g. NOT_READY
                        word += f":{event.provider_status}"
                    seen.append(word + (" (queued)" if event.queued else ""))
                elif event.type == "client_event":
                    session.end("done")  # the cancel path runs; the stream ends with "ended"
                elif event.type == "ended":
                    seen.append(f"ended: {event.outcome} ({event.reason})")
    print(" -> ".join(seen))
    print(session.state, session.result.outcome, session.result.client_events)
    print("cancel path calls:", provider.sessions[0].ended)
    return seen


if __name__ == "__main__":
    anyio.run(main)
