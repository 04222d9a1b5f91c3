"""The ``runway`` plugin (entry point ``runway`` in group ``masquerade``): registers a
:class:`~masquerade_runway.RunwayProvider` configured from the environment
(``RUNWAYML_API_SECRET``, ``RUNWAYML_BASE_URL``), the ``masquerade runway`` command
(custom avatars, knowledge documents, conversations), and offers the Runway emulator to
the command line (``masquerade emulate runway``, ``masquerade demo``, offline
``masquerade run``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from masquerade import hookimpl
from masquerade.provider import Emulator

from ._provider import RunwayProvider

__all__ = [
    "masquerade_register_providers",
    "masquerade_register_commands",
    "masquerade_register_emulators",
    "EMULATOR",
]


def demo_script(steps: Sequence[Mapping[str, Any]], pace: float) -> dict[str, Any]:
    """The demo's conversation as an emulator script file: the steps, and a session plan
    whose queue wait, provisioning and step delay scale with ``pace``."""
    return {
        "steps": [dict(step) for step in steps],
        "plan": {"queued": 3 * pace, "provisioning": 2 * pace, "step_delay": pace},
    }


#: The Runway emulator, as the command line sees it (imported only when it starts).
EMULATOR = Emulator(
    "runway",
    "masquerade_runway.emulator:serve",
    key_env="RUNWAYML_API_SECRET",
    base_url_env="RUNWAYML_BASE_URL",
    title="Runway",
    demo_script=demo_script,
    # The demo's join page hands the browser LiveKit credentials.
    demo_options={"consume": True},
)


@hookimpl
def masquerade_register_providers(register: Callable[[Any], None]) -> None:
    register(RunwayProvider())


@hookimpl
def masquerade_register_commands(register: Callable[..., None]) -> None:
    # ``masquerade runway ...``: custom avatars, documents, conversations (see _cli).
    from . import _cli

    register("runway", _cli.add_arguments, _cli.run, help=_cli.HELP)


@hookimpl
def masquerade_register_emulators(register: Callable[[Emulator], None]) -> None:
    register(EMULATOR)
