"""The ``openai`` entry point: registers the default :class:`OpenAIRealtimeProvider`.

The key is read from ``OPENAI_API_KEY`` when a session starts, not at import, so the
plugin loads (and ``masquerade plugins`` lists it) even where no key is set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from masquerade import hookimpl

from ._provider import OpenAIRealtimeProvider

__all__ = ["masquerade_register_providers"]


@hookimpl
def masquerade_register_providers(register: Callable[[Any], None]) -> None:
    register(OpenAIRealtimeProvider())
