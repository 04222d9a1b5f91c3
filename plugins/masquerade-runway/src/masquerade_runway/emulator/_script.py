"""The emulator's conversation scripts and per-session plans: plain data.

A script is a list of steps the emulated avatar worker plays once the call starts::

    SCRIPT = [
        {"say": "Hi! What is your order number?"},                   # the avatar speaks
        {"say": "A1001", "role": "user"},                            # the user speaks
        {"tool": "lookup_order", "args": {"order_id": "A1001"}},     # a backend_rpc call
        {"client_event": "show_order", "args": {"order_id": "A1001"}},
        {"say": "It ships tomorrow."},
        {"hangup": True},                                            # the user hangs up
    ]

=======================================================  =======================================
step                                                     what the worker does
=======================================================  =======================================
``{"say": text, "role": "assistant", "chunks": 3}``      ``transcription`` deltas of the next
                                                         turn of ``role``; one transcript turn
``{"tool": "*"}``                                         calls the session's first backend tool
                                                         with example arguments made from its
                                                         parameters (skipped without tools)
``{"tool": name, "args": {...}}``                        calls the backend's RPC method ``name``
                                                         with ``{"args": ...}`` and waits up to
                                                         the tool's ``timeoutSeconds``; the
                                                         call and its result go in the
                                                         transcript. ``"bare": true`` sends the
                                                         arguments unwrapped, ``"payload": s``
                                                         sends ``s`` verbatim, ``"caller": i``
                                                         calls as identity ``i``,
                                                         ``"timeout": s`` waits ``s`` seconds
``{"client_event": name, "args": {...}}``                a ``client_event`` data message (then
                                                         its acknowledgement, unless
                                                         ``"ack": false``)
``{"data": {...} | "text"}``                             any data message, verbatim;
                                                         ``"sender": i`` sends it as identity
                                                         ``i`` (a forged message)
``{"wait": seconds}``                                    pause
``{"hangup": true}``                                     the user ends the call (COMPLETED)
``{"fail": message, "code": "..."}``                     the session fails (FAILED)
=======================================================  =======================================

After the last step the avatar stays in the call until it is ended (``END_CALL``,
``DELETE``, or its duration limit). A script file is JSON: either a list of steps, or
``{"steps": [...], "plan": {...}}`` with a :class:`SessionPlan`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Say",
    "CallTool",
    "SendClientEvent",
    "SendData",
    "Wait",
    "Hangup",
    "Fail",
    "Step",
    "SessionPlan",
    "parse_script",
    "load_script",
    "DEFAULT_SCRIPT",
    "OFFLINE_SCRIPT",
    "ANY_TOOL",
    "example_arguments",
]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Say(_Step):
    say: str
    role: Literal["user", "assistant"] = "assistant"
    chunks: int = Field(default=3, ge=1)


class CallTool(_Step):
    tool: str
    args: Any = Field(default_factory=dict)
    id: str | None = None
    bare: bool = False
    payload: str | None = None
    caller: str | None = None
    timeout: float | None = Field(default=None, gt=0)


class SendClientEvent(_Step):
    client_event: str
    args: dict[str, Any] = Field(default_factory=dict)
    ack: bool = True


class SendData(_Step):
    data: Any
    topic: str | None = None
    sender: str | None = None


class Wait(_Step):
    wait: float = Field(ge=0)


class Hangup(_Step):
    hangup: bool = True


class Fail(_Step):
    fail: str
    code: str = "INTERNAL_ERROR"


Step: TypeAlias = Say | CallTool | SendClientEvent | SendData | Wait | Hangup | Fail
_KEYS: dict[str, type[_Step]] = {
    "say": Say,
    "tool": CallTool,
    "client_event": SendClientEvent,
    "data": SendData,
    "wait": Wait,
    "hangup": Hangup,
    "fail": Fail,
}


class SessionPlan(BaseModel):
    """How the emulator plays one session (timings in seconds).

    Attributes:
        queued: how long the session waits ``NOT_READY`` with ``queued: true``.
        provisioning: how long it then stays ``NOT_READY`` (not queued).
        ready_without_key: answer ``READY`` without a ``sessionKey`` (a broken server).
        fail_code: end the session ``FAILED`` with this ``failureCode``...
        fail_at: ...when provisioning ends (``"provisioning"``) or ``fail_after`` seconds
            after becoming ``READY`` (``"ready"``).
        failure: the human-readable ``failure`` for ``fail_code``.
        fail_after: see ``fail_at``.
        practical_limit: a running session ends ``COMPLETED`` after this long, whatever its
            ``maxDuration`` (Runway cuts sessions near 300 s).
        finalize_delay: how long the conversation stays ``in_progress`` after the end.
        ready_ttl: how long a ``READY`` session waits for someone to join
            (``expiresAt``); then it ends ``FAILED`` (``SESSION_EXPIRED``).
        recording_ttl: how long a conversation's ``recordingUrl`` works (Runway: 24-48 h).
        frontend: who makes a session ``RUNNING`` (a frontend joining, as with Runway):
            ``"simulated"`` (default) -- the emulator plays the user, who joins when the
            backend joins (so a session with no browser runs); ``"real"`` -- only a
            participant joining with ``consume``'s credentials.
        start_on: when the worker starts the script: by default (``None``) when the
            session becomes ``RUNNING`` (a frontend joined), after a backend in the room
            registered its tools (or a second passed); ``"join"``: when anyone joins;
            ``"backend"``: when a backend joined.
        step_delay: pause between script steps.
        script: this session's script, instead of the emulator's.
    """

    model_config = ConfigDict(extra="forbid")

    queued: float = Field(default=0.0, ge=0)
    provisioning: float = Field(default=0.05, ge=0)
    ready_without_key: bool = False
    fail_code: str | None = None
    fail_at: Literal["provisioning", "ready"] = "provisioning"
    failure: str = "The session could not be started"
    fail_after: float = Field(default=0.0, ge=0)
    practical_limit: float = Field(default=300.0, gt=0)
    finalize_delay: float = Field(default=0.05, ge=0)
    ready_ttl: float = Field(default=300.0, gt=0)
    recording_ttl: float = Field(default=86400.0, gt=0)
    frontend: Literal["simulated", "real"] = "simulated"
    start_on: Literal["backend", "join"] | None = None
    step_delay: float = Field(default=0.0, ge=0)
    script: list[Step] | None = None


def parse_script(steps: Iterable[Step | Mapping[str, Any]]) -> list[Step]:
    """Steps from dicts (or step models); an unknown step raises ``ValueError``."""
    parsed: list[Step] = []
    for i, step in enumerate(steps):
        if isinstance(step, _Step):
            parsed.append(step)
            continue
        if not isinstance(step, Mapping):
            raise ValueError(f"script step {i} must be an object, got {step!r}")
        kinds = [k for k in step if k in _KEYS]
        if len(kinds) != 1:
            raise ValueError(
                f"script step {i} ({dict(step)!r}) must have exactly one of: {', '.join(_KEYS)}"
            )
        parsed.append(_KEYS[kinds[0]].model_validate(dict(step)))  # type: ignore[arg-type]
    return parsed


def load_script(source: str | Path | Iterable[Any] | Mapping[str, Any]) -> tuple[
    list[Step], SessionPlan | None
]:
    """A script (and optional plan) from a JSON file path, a list of steps, or
    ``{"steps": [...], "plan": {...}}``."""
    data: Any = source
    if isinstance(source, str | Path):
        data = json.loads(Path(source).read_text())
    if isinstance(data, Mapping):
        plan = data.get("plan")
        return parse_script(data.get("steps") or ()), (
            SessionPlan.model_validate(plan) if plan is not None else None
        )
    return parse_script(data), None


#: What the emulator plays when no script is given: a short greeting, no tools.
DEFAULT_SCRIPT: list[Step] = parse_script(
    [
        {"say": "Hi! I'm a masquerade emulated avatar. How can I help?"},
        {"say": "Just testing the connection.", "role": "user"},
        {"say": "Everything works. Talk to you soon!"},
    ]
)


#: ``{"tool": ANY_TOOL}`` calls the session's first backend tool (see the table above).
ANY_TOOL = "*"

#: What ``masquerade emulate runway`` and ``masquerade run`` play when no script is given:
#: a complete call in a second or so (greeting, one call of the session's first tool,
#: goodbye, hang-up), so that trying a graph offline ends on its own.
OFFLINE_SCRIPT: list[Step] = parse_script(
    [
        {"say": "Hi! I'm an emulated avatar: no API key, no network. How can I help?"},
        {"say": "Can you check that for me?", "role": "user"},
        {"tool": ANY_TOOL},
        {"say": "Done. Pass --script FILE to play your own conversation. Goodbye!"},
        {"hangup": True},
    ]
)

_EXAMPLES: dict[str, Any] = {"string": "A1001", "integer": 1, "number": 1, "boolean": True}


def example_arguments(tool: Mapping[str, Any]) -> dict[str, Any]:
    """Example arguments for a ``backend_rpc`` tool definition: one value per required
    parameter, of the parameter's type (the first ``enum`` value when it has one)."""
    arguments: dict[str, Any] = {}
    for param in tool.get("parameters") or ():
        if not isinstance(param, Mapping) or not param.get("required", False):
            continue
        enum = param.get("enum")
        kind = param.get("type")
        if isinstance(enum, list) and enum:
            value = enum[0]
        else:
            default: Any = {} if kind == "object" else [] if kind == "array" else ""
            value = _EXAMPLES.get(str(kind), default)
        arguments[str(param.get("name"))] = value
    return arguments
