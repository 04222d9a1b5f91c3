"""Quickstart: a graph whose first node is an avatar call with a backend tool."""

from typing import Any

import anyio
from pydantic import BaseModel

from masquerade import END, START, AvatarNode, Graph, Host, SessionResult, tool
from masquerade_runway.emulator import RunwayEmulator

SLOTS: dict[str, str] = {}


@tool
async def book_slot(customer: str, day: str, hour: int) -> str:
    """Book a delivery slot.

    Args:
        customer: The customer's name.
        day: Day of the week, like Monday.
        hour: Hour of the day, 8 to 18.
    """
    if not 8 <= hour <= 18:
        raise ValueError("deliveries run from 8 to 18")  # the model is told, the call goes on
    SLOTS[customer] = f"{day} {hour}:00"
    return f"booked {day} at {hour}:00"


class State(BaseModel):
    customer: str
    call: SessionResult | None = None  # written by the avatar node
    summary: str = ""  # written by the summarize node


def summarize(state: State) -> dict[str, Any]:
    """A plain Python node: it reads what the call produced."""
    assert state.call is not None
    booked = [c.output for c in state.call.tool_calls if c.error is None]
    return {"summary": f"{state.customer}: {state.call.outcome}, {booked}"}


graph = Graph(State)
graph.add_node(
    "concierge",
    AvatarNode(
        "runway",
        avatar="cooking-teacher",
        tools=[book_slot],
        personality=lambda state: f"You help {state.customer} book a delivery slot.",
        on_ready=lambda credentials: print("frontend joins with", sorted(credentials.reveal())),
        output_key="call",
        max_duration=300,
    ),
)
graph.add_node("summarize", summarize)
graph.add_edge(START, "concierge")
graph.add_edge("concierge", "summarize")
graph.add_edge("summarize", END)

SCRIPT = [
    {"say": "Hello! When should we deliver?"},
    {"say": "Monday at ten, please.", "role": "user"},
    {"tool": "book_slot", "args": {"customer": "Ada", "day": "Monday", "hour": 10}},
    {"say": "Done: Monday at 10:00."},
    {"hangup": True},
]


async def main() -> State:
    async with RunwayEmulator(script=SCRIPT) as emulator:
        host = Host(plugins=[emulator.provider()])
        final = await graph.run(State(customer="Ada"), host=host)
    print(final.summary)
    return final


if __name__ == "__main__":
    anyio.run(main)
