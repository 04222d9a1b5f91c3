"""Run a complete avatar session end to end and show it live (no API key needed)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import anyio

from .._console import ConsoleView
from ..host import Host
from ..session import SessionRequest
from ..testing import ScriptedProvider
from ..tools import ToolContext, tool

ORDERS = {"A1001": {"status": "shipped", "eta": "tomorrow", "items": ["espresso machine"]}}


@tool
async def lookup_order(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    """Look up an order by its number.

    Args:
        order_id: The order number the customer reads out, like A1001.
    """
    ctx.logger.info("looking up %s", order_id)
    order = ORDERS.get(order_id.upper())
    if order is None:
        raise LookupError(f"no order {order_id}")
    return {"order_id": order_id.upper(), **order}


@tool(timeout=0.5)
async def book_slot(day: str, hour: int) -> str:
    """Book a delivery slot.

    Args:
        day: Day of the week.
        hour: Hour of the day, 8 to 18.
    """
    if day.lower() == "sunday":
        await anyio.sleep(5)  # the warehouse system hangs on Sundays: shows the timeout path
    return f"booked {day} at {hour}:00"


SCRIPT: list[dict[str, Any]] = [
    {"say": "Hi, I'm your concierge. How can I help?"},
    {"say": "Where is my order A1001?", "role": "user"},
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"say": "Your espresso machine has shipped and arrives tomorrow."},
    {"say": "Can you book a delivery slot for Sunday at 10?", "role": "user"},
    {"tool": "book_slot", "args": {"day": "Sunday", "hour": "ten"}},
    {"tool": "book_slot", "args": {"day": "Sunday", "hour": 10}},
    {"say": "Sorry, Sunday booking is not responding. How about Monday?"},
    {"tool": "book_slot", "args": {"day": "Monday", "hour": 10}},
    {"client_event": "show_confirmation", "args": {"day": "Monday", "hour": 10}},
    {"say": "Booked Monday at ten. Anything else?"},
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument("--delay", type=float, default=0.15, help="seconds between script steps")


def run(args: argparse.Namespace) -> int:
    return anyio.run(_demo, args)


async def _demo(args: argparse.Namespace) -> int:
    provider = ScriptedProvider(SCRIPT, queued_polls=1, not_ready_polls=1, step_delay=args.delay)
    view: Any
    if args.json:
        from .._console import JsonView

        view = JsonView()
    else:
        view = ConsoleView()
        view.line("masquerade demo: a scripted avatar session in-process (no API key needed)")
    request = SessionRequest(
        provider="scripted", name="concierge", tools=[lookup_order, book_slot], max_duration=60
    )
    async with Host(plugins=[provider]) as host:
        result = await host.run_session(request, on_event=view)
    if args.json:
        print(json.dumps({"type": "summary", **result.model_dump(mode="json")}, default=str))
    else:
        view.summary(result)
    return 0 if result.outcome == "completed" else 1
