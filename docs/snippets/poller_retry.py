"""Concepts: the shared poller, a rate-limited status check, and its counters."""

import anyio

from masquerade import Host, Poller, ProviderError, SessionRequest, SessionResult
from masquerade.testing import ScriptedProvider


async def main() -> int:
    provider = ScriptedProvider(
        [{"say": "Ready when you are."}],
        not_ready_polls=3,
        # The first status check is rate limited: the poller waits retry_after, then retries.
        poll_errors=[
            ProviderError("too many requests", status_code=429, retryable=True, retry_after=0.05)
        ],
    )
    poller = Poller(initial_interval=0.01, max_interval=0.1, growth=2.0, concurrency=4)
    results: list[SessionResult] = []

    async with Host(plugins=[provider], load_entrypoints=False, poller=poller) as host:

        async def one_call() -> None:
            results.append(await host.run_session(SessionRequest(provider="scripted")))

        async with anyio.create_task_group() as tg:  # ten sessions provision at once
            for _ in range(10):
                tg.start_soon(one_call)

    print(sum(result.ok for result in results), "completed")
    print(f"{poller.stats.polls} status checks, {poller.stats.errors} retried after an error")
    return poller.stats.errors


if __name__ == "__main__":
    anyio.run(main)
