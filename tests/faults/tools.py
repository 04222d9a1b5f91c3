"""Tools the fault scenarios give their sessions."""

from __future__ import annotations

from typing import Any

import anyio

from masquerade import tool


@tool(timeout=2.0)
async def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    if order_id == "boom":
        raise RuntimeError("the order database is down")
    return {"order_id": order_id, "status": "shipped"}


@tool(timeout=3.0)
async def slow_lookup(seconds: float) -> str:
    """Wait, then answer.

    Args:
        seconds: How long to wait.
    """
    await anyio.sleep(seconds)
    return f"waited {seconds}"


@tool(timeout=0.3)
async def hanging_tool(order_id: str) -> str:
    """Never answers by itself.

    Args:
        order_id: The order number.
    """
    await anyio.sleep_forever()
    return order_id


@tool(timeout=0.3)
async def quick_lookup(order_id: str) -> str:
    """Answer at once (a short timeout, for scenarios that wait for it).

    Args:
        order_id: The order number.
    """
    return order_id
