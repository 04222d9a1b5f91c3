"""Concepts: defining tools, the schemas providers receive, and how every call is answered."""

import json
from typing import Literal

import anyio
from pydantic import BaseModel

from masquerade import Host, SessionRequest, ToolContext, tool
from masquerade.testing import ScriptedProvider


class Address(BaseModel):
    """Where to deliver.

    Attributes:
        street: Street and number.
        city: The city.
    """

    street: str
    city: str


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number.

    Args:
        order_id: The order number the customer reads out, like A1001.
    """
    if order_id != "A1001":
        raise LookupError(f"there is no order {order_id}")  # the model reads this message
    return {"order_id": order_id, "status": "shipped"}


@tool(timeout=1.0)
def book_slot(
    ctx: ToolContext,  # not part of the schema: masquerade passes it in
    day: Literal["monday", "tuesday"],
    address: Address,
    hour: int = 10,
) -> str:
    """Book a delivery slot.

    Args:
        day: The delivery day.
        address: Where to deliver.
        hour: Hour of the day, 8 to 18.
    """
    ctx.logger.info("booking for session %s (call %s)", ctx.session.id, ctx.call_id)
    return f"booked {day} at {hour}:00 for {address.street}, {address.city}"


@tool(timeout=0.2)
async def slow_report() -> str:
    """Build a report (too slowly)."""
    await anyio.sleep(5)
    return "never sent"


@tool(kind="client_event")
def show_order(order_id: str) -> None:
    """Show the order on the customer's screen.

    Args:
        order_id: The order to show.
    """


SCRIPT = [
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"tool": "lookup_order", "args": {"order_id": "Z9"}},
    {
        "tool": "book_slot",
        "args": {"day": "monday", "address": {"street": "1 Main St", "city": "Oslo"}},
    },
    {"tool": "book_slot", "args": {"day": "sunday", "address": {}}},
    {"tool": "slow_report", "args": {}},
    {"tool": "cancel_everything", "args": {}},
]


async def main() -> list[str]:
    host = Host(plugins=[ScriptedProvider(SCRIPT)], load_entrypoints=False)
    runway = host.tool_schema(book_slot, "runway")  # what Runway receives
    print(runway["type"], [(p["name"], p["type"]) for p in runway["parameters"]])
    openai = host.tool_schema(book_slot, "openai")  # a JSON Schema function tool
    print(openai["type"], json.dumps(openai["parameters"]["required"]))
    tools = [lookup_order, book_slot, slow_report, show_order]
    async with host:
        result = await host.run_session(SessionRequest(provider="scripted", tools=tools))
    answers = []
    for call in result.tool_calls:
        answer = call.output if call.error is None else f"{call.error_type}: {call.error}"
        answers.append(f"{call.name}: {answer}")
    print("\n".join(answers))
    return answers


if __name__ == "__main__":
    anyio.run(main)
