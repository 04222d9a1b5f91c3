"""Testing guide: asserting on events, tool answers and the cancel path with ScriptedProvider."""

import anyio

from masquerade import Host, Poller, ProviderError, SessionRequest, tool
from masquerade.testing import ScriptedProvider


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return {"order_id": order_id, "status": "shipped"}


async def main() -> list[str]:
    checks: list[str] = []
    poller = Poller(initial_interval=0.01, max_interval=0.05)  # fast provisioning in tests

    # A call that breaks halfway: the session fails, the cancel path still runs once.
    provider = ScriptedProvider(
        [
            {"tool": "lookup_order", "args": {"order_id": "A1"}},
            {"fail": "connection reset by peer", "code": "network"},
        ],
        queued_polls=1,
    )
    async with Host(plugins=[provider], load_entrypoints=False, poller=poller) as host:
        result = await host.run_session(SessionRequest(provider="scripted", tools=[lookup_order]))
    scripted = provider.sessions[0]
    assert result.outcome == "failed"
    assert result.failure_code == "network"
    assert scripted.ended == ["error"]  # the cancel path ran exactly once
    assert scripted.answers[0].output == {"order_id": "A1", "status": "shipped"}
    checks.append(f"{result.outcome} ({result.failure_code}), cancel path: {scripted.ended}")

    # A provider that cannot be reached: creation fails, nothing to cancel.
    down = ScriptedProvider(create_error=ProviderError("service unavailable", status_code=503))
    async with Host(plugins=[down], load_entrypoints=False, poller=poller) as host:
        result = await host.run_session(SessionRequest(provider="scripted"))
    assert result.outcome == "failed"
    checks.append(f"{result.outcome}: {result.failure}")
    print("\n".join(checks))
    return checks


if __name__ == "__main__":
    anyio.run(main)
