"""The concierge: the graph ``masquerade demo`` runs, and ``examples/concierge`` shows.

An avatar takes a customer's call, looks up their order and books a delivery slot
through backend tools; then a plain Python node turns the call into a support ticket::

    START ─▶ concierge (AvatarNode: a whole avatar session) ─▶ ticket ─▶ END

::

    from masquerade.cli._concierge import ConciergeState, build_graph

    graph = build_graph("runway")
    final = await graph.run(ConciergeState(customer="Ada"))
    print(final.ticket)

It lives inside the package so that ``masquerade demo`` works from an installed wheel;
``examples/concierge`` imports it from here. The demo conversation (:data:`SCRIPT`) is
what the provider emulators play when no API key is set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from pydantic import BaseModel

from ..events import JoinCredentials
from ..graph import END, START, AvatarNode, Graph
from ..session import SessionResult
from ..tools import tool

__all__ = [
    "ORDERS",
    "SCRIPT",
    "ConciergeState",
    "Ticket",
    "book_slot",
    "build_graph",
    "lookup_order",
    "write_ticket",
]

#: The backend: a tiny order database.
ORDERS: dict[str, dict[str, Any]] = {
    "A1001": {"status": "shipped", "eta": "tomorrow", "items": ["espresso machine"]},
    "A1002": {"status": "processing", "eta": "in 3 days", "items": ["milk frother"]},
}


@tool
async def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order by its number.

    Args:
        order_id: The order number the customer reads out, like A1001.
    """
    order = ORDERS.get(order_id.strip().upper())
    if order is None:
        raise LookupError(f"there is no order {order_id}")
    return {"order_id": order_id.strip().upper(), **order}


@tool(timeout=1.0)
async def book_slot(day: str, hour: int) -> str:
    """Book a delivery slot.

    Args:
        day: Day of the week, like Monday.
        hour: Hour of the day, 8 to 18.
    """
    if day.strip().lower() == "sunday":
        # The warehouse system hangs on Sundays: the demo shows a tool timing out.
        await anyio.sleep(10)
    if not 8 <= hour <= 18:
        raise ValueError("deliveries run from 8 to 18")
    slot = f"{day.strip().capitalize()} {hour}:00"
    return f"booked {slot}"


#: The demo conversation, in :class:`masquerade.testing.ScriptedProvider` form.
SCRIPT: list[dict[str, Any]] = [
    {"say": "Hi, I'm your concierge. How can I help?"},
    {"say": "Where is my order A1001?", "role": "user"},
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"say": "Your espresso machine has shipped and arrives tomorrow."},
    {"say": "Can you book a delivery slot for Sunday at 10?", "role": "user"},
    {"tool": "book_slot", "args": {"day": "Sunday", "hour": "ten"}},
    {"tool": "book_slot", "args": {"day": "Sunday", "hour": 10}},
    {"say": "Sorry, Sunday booking is not responding. How about Monday at ten?"},
    {"say": "Monday works.", "role": "user"},
    {"tool": "book_slot", "args": {"day": "Monday", "hour": 10}},
    {"client_event": "show_confirmation", "args": {"day": "Monday", "hour": 10}},
    {"say": "Booked: Monday at ten. Anything else?"},
    {"say": "No, thanks!", "role": "user"},
]


class Ticket(BaseModel):
    """The support ticket the call turns into."""

    customer: str
    outcome: str
    order_id: str | None = None
    order_status: str | None = None
    booked_slot: str | None = None
    tool_errors: list[str] = []
    turns: int = 0
    summary: str


class ConciergeState(BaseModel):
    """The graph's state: who calls, the call's result, the ticket."""

    customer: str = "Ada Lovelace"
    call: SessionResult | None = None
    ticket: Ticket | None = None


def write_ticket(state: ConciergeState) -> dict[str, Ticket]:
    """Turn the call's transcript and tool results into a ticket (plain Python)."""
    call = state.call
    assert call is not None, "the concierge node runs first"
    order_id = order_status = booked = None
    errors: list[str] = []
    for record in call.tool_calls:
        if record.error is not None:
            errors.append(f"{record.name}: {record.error_type}")
        elif record.name == "lookup_order" and isinstance(record.output, dict):
            order_id, order_status = record.output.get("order_id"), record.output.get("status")
        elif record.name == "book_slot":
            booked = str(record.output).removeprefix("booked ")
    parts = [f"{state.customer} called ({call.outcome})"]
    if order_id:
        parts.append(f"order {order_id} is {order_status}")
    if booked:
        parts.append(f"delivery booked for {booked}")
    if errors:
        parts.append(f"{len(errors)} tool error(s) handled")
    return {
        "ticket": Ticket(
            customer=state.customer,
            outcome=call.outcome,
            order_id=order_id,
            order_status=order_status,
            booked_slot=booked,
            tool_errors=errors,
            turns=sum(1 for turn in call.transcript if turn.text),
            summary="; ".join(parts) + ".",
        )
    }


def personality(state: ConciergeState) -> str:
    return (
        f"You are a friendly concierge for an online shop, speaking with {state.customer}. "
        "Look up orders with lookup_order and book deliveries with book_slot. Be brief."
    )


def build_graph(
    provider: str = "runway",
    *,
    avatar: str | None = "human-resource",
    on_ready: Callable[[JoinCredentials], Any] | None = None,
    max_duration: float = 300,
    options: dict[str, Any] | None = None,
) -> Graph[ConciergeState]:
    """The concierge graph on ``provider`` (``"runway"``; any provider works)."""
    concierge = AvatarNode(
        provider,
        avatar=avatar,
        tools=[lookup_order, book_slot],
        personality=personality,
        start_script=lambda state: (
            f"Hi {state.customer.split()[0]}, I'm your concierge. How can I help?"
        ),
        max_duration=max_duration,
        on_ready=on_ready,
        options=options,
        output_key="call",
    )
    graph = Graph(ConciergeState, name="concierge")
    graph.add_node("concierge", concierge)
    graph.add_node("ticket", write_ticket)
    graph.add_edge(START, "concierge")
    graph.add_edge("concierge", "ticket")
    graph.add_edge("ticket", END)
    return graph
