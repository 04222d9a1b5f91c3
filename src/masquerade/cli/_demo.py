"""Run the concierge demo: an avatar session with backend tools, then a ticket (no key needed).

::

    $ masquerade demo            # no RUNWAYML_API_SECRET: the Runway emulator, in-process
    $ masquerade demo --json     # one JSON object per event
    $ RUNWAYML_API_SECRET=key_... masquerade demo   # a real Runway session; join it from
                                                    # the browser page it prints
    $ masquerade demo --provider NAME   # any provider whose plugin offers an emulator

The demo runs the concierge graph (``masquerade.cli._concierge``, shown in ``examples/concierge``):
an avatar looks up an order and books a delivery slot through backend tools, then a
plain Python node turns the call into a ticket.

The emulator comes from the provider's plugin, through
:func:`~masquerade.hookspecs.masquerade_register_emulators` (its ``demo_script`` turns
the conversation into the emulator's script); with no plugin for the default provider,
an in-process :class:`~masquerade.testing.ScriptedProvider` plays it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ..errors import ConfigurationError
from ..host import Host
from ..poller import Poller
from ..testing import ScriptedProvider
from ._concierge import SCRIPT, ConciergeState, build_graph
from ._console import ConsoleView, JsonView
from ._emulate import available_emulators
from ._run import machine_readable_stdout, make_view, offline_providers, run_graph

#: The provider the demo uses unless --provider says otherwise.
DEFAULT_PROVIDER = "runway"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")
    parser.add_argument("--customer", default="Ada Lovelace", help="who calls the concierge")
    parser.add_argument(
        "--provider",
        default=DEFAULT_PROVIDER,
        help=f"the provider whose avatar answers ({DEFAULT_PROVIDER}); any provider whose "
        "plugin offers an emulator can play the demo",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use the emulator even when the provider's API key is set",
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


@asynccontextmanager
async def _setup(args: argparse.Namespace) -> AsyncIterator[_Setup]:
    pace = max(0.0, args.pace)
    provider = args.provider
    # Poll at a human pace: queue wait and provisioning are part of what the demo shows.
    poller = Poller(initial_interval=0.25, max_interval=0.5, queued_interval=0.5)
    plugins = Host()  # which plugins offer what (the session gets its own host below)
    emulator = available_emulators(plugins).get(provider)
    key_env = emulator.key_env if emulator is not None else None
    if key_env and os.environ.get(key_env) and not args.offline:
        assert emulator is not None
        from ._join_page import JoinPage

        async with JoinPage() as page:
            yield _Setup(
                provider,
                Host(poller=poller),
                f"{key_env} is set: this is a real {emulator.display_name} session (billed "
                f"while it runs). Join it from a browser at {page.url}",
                on_ready=page.publish,
                options=dict(emulator.demo_options),
            )
        return

    if emulator is not None and emulator.demo_script is not None and key_env:
        script = emulator.demo_script([*SCRIPT, {"hangup": True}], pace)
        async with offline_providers(
            {provider}, force=True, scripts={provider: script}, host=plugins
        ) as emulated:
            reason = "--offline" if args.offline else f"{key_env} is not set"
            yield _Setup(
                provider,
                # Created once the emulator runs: the provider reads its key and base URL
                # from the environment the emulator set.
                Host(poller=poller),
                f"{reason}: running the {emulator.display_name} emulator in-process at "
                f"{emulated[0].base_url} (no network, nothing billed)",
            )
        return

    if provider != DEFAULT_PROVIDER:
        raise ConfigurationError(
            f"no installed plugin offers an emulator for {provider!r} that can play the demo",
            hint="`masquerade emulate` lists the emulators installed",
        )
    scripted = ScriptedProvider(
        SCRIPT, name="concierge-demo", queued_polls=3, not_ready_polls=2, step_delay=pace
    )
    yield _Setup(
        scripted.name,
        Host(plugins=[scripted], poller=poller),
        f"masquerade-{provider} is not installed: the conversation is played by an "
        f"in-process scripted provider (install the masquerade-{provider} wheel for its "
        "emulator)",
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
