"""Run the concierge demo: an avatar session with backend tools, then a ticket (no key needed).

::

    $ masquerade demo            # offline: the conversation is played in-process
    $ masquerade demo --json     # one JSON object per event

The demo runs the concierge graph (``masquerade._demo``, shown in ``examples/concierge``):
an avatar looks up an order and books a delivery slot through backend tools, then a
plain Python node turns the call into a ticket.
"""

from __future__ import annotations

import argparse
from typing import Any

import anyio

from .._console import ConsoleView, JsonView
from .._demo import SCRIPT, ConciergeState, build_graph
from ..host import Host
from ..poller import Poller
from ..testing import ScriptedProvider
from .run import run_graph


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")
    parser.add_argument(
        "--delay", type=float, default=0.15, help="seconds between conversation steps (0.15)"
    )
    parser.add_argument("--customer", default="Ada Lovelace", help="who calls the concierge")


def run(args: argparse.Namespace) -> int:
    return anyio.run(_demo, args)


async def _demo(args: argparse.Namespace) -> int:
    view: ConsoleView | JsonView = JsonView() if args.json else ConsoleView()
    provider = ScriptedProvider(
        SCRIPT, name="concierge-demo", queued_polls=2, not_ready_polls=2, step_delay=args.delay
    )
    notice = (
        "masquerade demo: the conversation is played in-process by a scripted provider "
        "(no API key, no network)"
    )
    if isinstance(view, JsonView):
        view.emit({"type": "demo", "provider": provider.name, "message": notice})
    else:
        view.line(notice)
    graph = build_graph(provider.name, avatar=None, max_duration=120)
    poller = Poller(initial_interval=0.2, max_interval=0.5, queued_interval=0.5)
    host = Host(plugins=[provider], poller=poller)
    final: Any = await run_graph(
        graph, ConciergeState(customer=args.customer), view=view, host=host
    )
    call = final.call if final is not None else None
    return 0 if call is not None and call.outcome == "completed" else 1
