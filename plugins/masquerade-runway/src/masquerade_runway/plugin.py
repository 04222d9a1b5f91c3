"""The ``runway`` plugin (entry point ``runway`` in group ``masquerade``): registers a
:class:`~masquerade_runway.RunwayProvider` configured from the environment
(``RUNWAYML_API_SECRET``, ``RUNWAYML_BASE_URL``), and the ``masquerade runway`` command
(custom avatars, knowledge documents, conversations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from masquerade import hookimpl

from ._provider import RunwayProvider

__all__ = ["masquerade_register_providers", "masquerade_register_commands"]


@hookimpl
def masquerade_register_providers(register: Callable[[Any], None]) -> None:
    register(RunwayProvider())


@hookimpl
def masquerade_register_commands(register: Callable[..., None]) -> None:
    # ``masquerade runway ...``: custom avatars, documents, conversations (see _cli).
    from . import _cli

    register("runway", _cli.add_arguments, _cli.run, help=_cli.HELP)
