"""Run the concierge demo: an avatar session with backend tools, then a ticket (no key needed).

::

    $ masquerade demo            # no RUNWAYML_API_SECRET: the Runway emulator, in-process
    $ masquerade demo --json     # one JSON object per event
    $ RUNWAYML_API_SECRET=key_... masquerade demo   # a real Runway session; join it from
                                                    # the browser page it prints

The demo runs the concierge graph (``masquerade.cli._concierge``, shown in ``examples/concierge``):
an avatar looks up an order and books a delivery slot through backend tools, then a
plain Python node turns the call into a ticket.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ..host import Host
from ..poller import Poller
from ._concierge import SCRIPT, ConciergeState, build_graph
from ._console import ConsoleView, JsonView
from ._run import machine_readable_stdout, make_view, run_graph

KEY_ENV = "RUNWAYML_API_SECRET"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")
    parser.add_argument("--customer", default="Ada Lovelace", help="who calls the concierge")
    parser.add_argument(
        "--offline", action="store_true", help=f"use the emulator even when {KEY_ENV} is set"
    )
    parser.add_argument(
        "--pace",
        "--delay",
        dest="pace",
        type=float,
        default=0.6,
        help="offline: seconds between conversation steps, and the scale of the emulated "
        "queue wait (0.6; 0 runs as fast as possible)",
    )
    parser.add_argument(
        "--max-duration", type=float, default=300, help="seconds the call may last (300)"
    )


def run(args: argparse.Namespace) -> int:
    view = make_view(json_output=args.json)
    with machine_readable_stdout(args.json):
        return anyio.run(_demo, args, view)


class _Setup:
    """Where the demo's session runs: the provider name, the host, one line saying so."""

    def __init__(self, provider: str, host: Host, notice: str, **graph_options: Any) -> None:
        self.provider = provider
        self.host = host
        self.notice = notice
        self.graph_options = graph_options


def _runway_emulator() -> Any:
    """The Runway emulator class, or ``None`` when masquerade-runway is not installed."""
    try:
        from masquerade_runway.emulator import RunwayEmulator
    except ImportError:
        return None
    return RunwayEmulator


@asynccontextmanager
async def _setup(args: argparse.Namespace) -> AsyncIterator[_Setup]:
    pace = max(0.0, args.pace)
    # Poll at a human pace: queue wait and provisioning are part of what the demo shows.
    poller = Poller(initial_interval=0.25, max_interval=0.5, queued_interval=0.5)
    emulator_class = _runway_emulator()
    if os.environ.get(KEY_ENV) and not args.offline:
        from ._join_page import JoinPage

        async with JoinPage() as page:
            yield _Setup(
                "runway",
                Host(poller=poller),
                f"{KEY_ENV} is set: this is a real Runway session (billed while it runs). "
                f"Join it from a browser at {page.url}",
                on_ready=page.publish,
                options={"consume": True},
            )
        return

    if emulator_class is not None:
        plan = {"queued": 3 * pace, "provisioning": 2 * pace, "step_delay": pace}
        emulator = emulator_class(script=[*SCRIPT, {"hangup": True}], plan=plan)
        async with emulator:
            reason = "--offline" if args.offline else f"{KEY_ENV} is not set"
            yield _Setup(
                "runway",
                Host(plugins=[emulator.provider()], poller=poller),
                f"{reason}: running the Runway emulator in-process at {emulator.base_url} "
                "(no network, nothing billed)",
            )
        return

    from ..testing import ScriptedProvider

    provider = ScriptedProvider(
        SCRIPT, name="concierge-demo", queued_polls=3, not_ready_polls=2, step_delay=pace
    )
    yield _Setup(
        provider.name,
        Host(plugins=[provider], poller=poller),
        "masquerade-runway is not installed: the conversation is played by an in-process "
        "scripted provider (install the masquerade-runway wheel for the Runway emulator)",
        avatar=None,
    )


async def _demo(args: argparse.Namespace, view: ConsoleView | JsonView) -> int:
    async with _setup(args) as setup:
        if isinstance(view, JsonView):
            view.emit({"type": "demo", "provider": setup.provider, "message": setup.notice})
        else:
            view.line(f"masquerade demo · {setup.notice}")
        graph = build_graph(setup.provider, max_duration=args.max_duration, **setup.graph_options)
        final: Any = await run_graph(
            graph, ConciergeState(customer=args.customer), view=view, host=setup.host
        )
    call = final.call if final is not None else None
    return 0 if call is not None and call.outcome == "completed" else 1
