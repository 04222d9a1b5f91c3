"""The ``runway`` plugin (entry point ``runway`` in group ``masquerade``): registers a
:class:`~masquerade_runway.RunwayProvider` configured from the environment
(``RUNWAYML_API_SECRET``, ``RUNWAYML_BASE_URL``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from masquerade import hookimpl

from ._provider import RunwayProvider

__all__ = ["masquerade_register_providers"]


@hookimpl
def masquerade_register_providers(register: Callable[[Any], None]) -> None:
    register(RunwayProvider())
