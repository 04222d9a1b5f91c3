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
``POST .../connect_backend``, ``GET/DELETE /v1/avatar_conversations[/{id}]`` (cursor
pages, signed recording URLs that expire), ``/v1/avatars`` (create, get, update, list,
delete), ``GET /v1/avatar_usage``, ``/v1/documents`` (create, get, update, list, delete)
and ``POST /v1/uploads``; and, emulator-only, ``GET /_emulator/sessions`` (every session
created, with each backend tool call's ``name`` and ``answers`` received; see
:meth:`RunwayEmulator.inventory`). Bodies are validated as strictly as the API validates
them, answering 400 with its zod-style messages; ``X-Runway-Version`` is required.

Sessions go ``NOT_READY`` (``queued`` over the account's concurrency limit, see
:class:`Account`) -> ``READY`` (``FAILED`` at ``expiresAt`` if nobody joins) ->
``RUNNING`` (when a frontend joins; by default the emulator plays the user, who joins
with the backend) -> ``COMPLETED`` / ``CANCELLED``, or ``FAILED`` with a ``failureCode``
when a :class:`SessionPlan` says so. A session with an ``integration`` runs without a
Runway frontend and its avatar says nothing of the script (your agent speaks). Faults on
demand: :meth:`RunwayEmulator.inject` (429 with retry-after, 5xx, slow answers), queueing
and failures with :meth:`RunwayEmulator.plan_next`, quotas with
:meth:`RunwayEmulator.set_account`.

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
