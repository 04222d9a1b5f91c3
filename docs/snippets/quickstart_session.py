"""Quickstart: one avatar session with a backend tool, on the local Runway emulator."""

from typing import Any

import anyio

from masquerade import Host, SessionRequest, tool
from masquerade_runway.emulator import RunwayEmulator

ORDERS = {"A1001": {"status": "shipped", "eta": "tomorrow"}}


@tool
async def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order by its number.

    Args:
        order_id: The order number the customer reads out, like A1001.
    """
    return {"order_id": order_id, **ORDERS.get(order_id, {"status": "unknown"})}


# What the emulated avatar and caller say and do, in order.
SCRIPT = [
    {"say": "Hi! What is your order number?"},
    {"say": "It is A1001.", "role": "user"},
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"say": "It has shipped and arrives tomorrow."},
    {"hangup": True},
]


async def main() -> None:
    # emulator.provider() is the Runway provider, pointed at the emulator.
    async with (
        RunwayEmulator(script=SCRIPT) as emulator,
        Host(plugins=[emulator.provider()]) as host,
    ):
        request = SessionRequest(
            provider="runway",
            avatar="cooking-teacher",
            personality="You are a helpful concierge for an online shop.",
            tools=[lookup_order],
            max_duration=300,
        )
        async with host.session(request) as session:
            async for event in session.events():
                if event.type == "ready":
                    # Hand these to the browser (sessionId, sessionKey).
                    print("ready:", sorted(event.credentials.reveal()))
                elif event.type == "transcript.done":
                    print(f"{event.role}: {event.text}")
                elif event.type == "tool.result":
                    print(f"tool {event.name} -> {event.output}")

    result = session.result
    print(result.outcome, [call.name for call in result.tool_calls])


if __name__ == "__main__":
    anyio.run(main)
