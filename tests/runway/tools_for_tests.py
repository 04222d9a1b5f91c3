"""Tools the Runway tests give their sessions."""

from __future__ import annotations

from typing import Any

import anyio

from masquerade import tool

ORDERS = {"A1001": {"status": "shipped", "eta": "tomorrow"}}


@tool
async def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order by its number.

    Args:
        order_id: The order number the customer reads out.
    """
    order = ORDERS.get(order_id)
    if order is None:
        raise LookupError(f"no order {order_id}")
    return {"order_id": order_id, **order}


@tool(timeout=2.0)
async def slow_lookup(seconds: float) -> str:
    """Wait, then answer.

    Args:
        seconds: How long to wait.
    """
    await anyio.sleep(seconds)
    return f"waited {seconds}"


@tool(kind="client_event")
def show_order(order_id: str) -> None:
    """Show the order on the customer's screen.

    Args:
        order_id: The order to show.
    """
