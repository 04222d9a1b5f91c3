"""The ``openai`` entry point: registers the default :class:`OpenAIRealtimeProvider`, and
offers the OpenAI Realtime emulator to the command line (``masquerade emulate openai``,
offline ``masquerade run``).

The key is read from ``OPENAI_API_KEY`` when a session starts, not at import, so the
plugin loads (and ``masquerade plugins`` lists it) even where no key is set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from masquerade import hookimpl
from masquerade.provider import Emulator

from ._provider import OpenAIRealtimeProvider

__all__ = ["masquerade_register_providers", "masquerade_register_emulators", "EMULATOR"]

#: The OpenAI Realtime emulator, as the command line sees it (imported only when it
#: starts). It plays its own scripts, not the demo's conversation.
EMULATOR = Emulator(
    "openai",
    "masquerade_openai.emulator:serve",
    key_env="OPENAI_API_KEY",
    base_url_env="OPENAI_BASE_URL",
    title="OpenAI Realtime",
)


@hookimpl
def masquerade_register_providers(register: Callable[[Any], None]) -> None:
    register(OpenAIRealtimeProvider())


@hookimpl
def masquerade_register_emulators(register: Callable[[Emulator], None]) -> None:
    register(EMULATOR)
