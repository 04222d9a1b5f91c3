"""A loopback Runway API with a scripted avatar: no key, no network.

::

    from masquerade_runway.emulator import RunwayEmulator

    SCRIPT = [
        {"say": "Hi! What is your order number?"},
        {"say": "A1001", "role": "user"},
        {"tool": "lookup_order", "args": {"order_id": "A1001"}},
        {"client_event": "show_order", "args": {"order_id": "A1001"}},
        {"say": "It ships tomorrow. Bye!"},
    ]

    async with RunwayEmulator(script=SCRIPT) as emulator:
        provider = emulator.provider()   # or set emulator.environ() as environment variables
        ...

Or from a shell: ``masquerade emulate runway --port 8765 [--api-key KEY] [--script FILE]``.

What it emulates (same paths, camelCase fields and status codes as Runway):
``POST/GET/DELETE /v1/realtime_sessions[/{id}]``, ``POST .../consume`` (session key),
``POST .../connect_backend``, ``GET /v1/avatar_conversations[/{id}]`` (cursor pages),
``GET /v1/avatars[/{id}]``, and, emulator-only, ``GET /_emulator/sessions`` (every
session created, with each backend tool call's ``name`` and ``answers`` received; see
:meth:`RunwayEmulator.inventory`); ``X-Runway-Version`` is required, unknown body keys and
out-of-range values are 400s. Sessions go ``NOT_READY`` (optionally queued) -> ``READY``
-> ``RUNNING`` (when someone joins the room) -> ``COMPLETED`` / ``CANCELLED``, or
``FAILED`` with a ``failureCode`` when a :class:`SessionPlan` says so. Faults on demand:
:meth:`RunwayEmulator.inject` (429 with retry-after, 5xx, slow answers), queueing and
failures with :meth:`RunwayEmulator.plan_next`.

The room is a websocket (``/rtc``, protocol in :class:`masquerade_runway.EmulatorRoom`)
with LiveKit's RPC and data-message semantics; ``connect_backend`` and ``consume`` answer
``{url, token, roomName}`` plus ``"roomTransport": "emulator"``, which tells masquerade's
client to use :class:`~masquerade_runway.EmulatorRoom`.
"""

from __future__ import annotations

from ._core import Account
from ._faults import Fault, RecordedRequest
from ._script import (
    DEFAULT_SCRIPT,
    OFFLINE_SCRIPT,
    CallTool,
    Fail,
    Hangup,
    Say,
    SendClientEvent,
    SendData,
    SessionPlan,
    Step,
    Wait,
    load_script,
    parse_script,
)
from ._server import RunwayEmulator, serve

__all__ = [
    "RunwayEmulator",
    "serve",
    "SessionPlan",
    "Account",
    "Fault",
    "RecordedRequest",
    "Step",
    "Say",
    "CallTool",
    "SendClientEvent",
    "SendData",
    "Wait",
    "Hangup",
    "Fail",
    "parse_script",
    "load_script",
    "DEFAULT_SCRIPT",
    "OFFLINE_SCRIPT",
]
