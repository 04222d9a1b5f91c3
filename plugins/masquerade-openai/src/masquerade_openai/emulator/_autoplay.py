"""The emulator's opening: a conversation it plays by itself once a session is configured.

``EmulatorScript(opening=[...])`` steps, in order:

=======================================  ==================================================
step                                     what the emulator does
=======================================  ==================================================
``{"say": text}``                        the model says ``text`` (a response of its own)
``{"caller": text}``                     the caller says ``text`` (and the model answers it)
``{"tool": name, "arguments": {...}}``   the caller asks for ``name`` and the model calls it;
                                         ``"*"`` is the session's first declared tool, with
                                         example arguments from its JSON schema (skipped
                                         without tools). The step waits for the tool's
                                         output and the model's answer about it.
``{"hangup": true}``                     the call ends: the socket closes with 1000
=======================================  ==================================================

:data:`OFFLINE_SCRIPT` (what ``masquerade emulate openai`` and ``masquerade run`` play
without ``--script``) uses it to play a complete call in about a second: greeting, one tool
call, goodbye, hang-up.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._script import EmulatorScript

if TYPE_CHECKING:
    from ._realtime import RealtimeServerSession

__all__ = ["OFFLINE_SCRIPT", "example_arguments", "play_opening"]

#: How long a step waits for the client (a tool's output, the answer after it).
STEP_TIMEOUT = 30.0
#: How long ``{"tool": "*"}`` waits for the session's tools to be declared.
TOOLS_WAIT = 2.0

OFFLINE_SCRIPT = EmulatorScript(
    opening=[
        {"say": "Hi! I'm an emulated voice agent: no API key, no network. How can I help?"},
        {"tool": "*"},
        {"say": "Done. Pass --script FILE to play your own conversation. Goodbye!"},
        {"hangup": True},
    ]
)

_EXAMPLES: dict[str, Any] = {"string": "A1001", "integer": 1, "number": 1, "boolean": True}


def example_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    """One example value per required property of a JSON schema object."""
    properties = schema.get("properties") or {}
    arguments: dict[str, Any] = {}
    for name in schema.get("required") or ():
        spec = properties.get(name) if isinstance(properties, Mapping) else None
        spec = spec if isinstance(spec, Mapping) else {}
        enum = spec.get("enum")
        kind = spec.get("type")
        if isinstance(enum, list) and enum:
            arguments[str(name)] = enum[0]
        else:
            default: Any = {} if kind == "object" else [] if kind == "array" else ""
            arguments[str(name)] = _EXAMPLES.get(str(kind), default)
    return arguments


async def _idle(session: RealtimeServerSession) -> None:
    """Until no response is in progress."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while session.responses.task is not None and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


async def _respond(session: RealtimeServerSession, params: dict[str, Any]) -> None:
    await _idle(session)
    session.responses.start(params)
    await _idle(session)


async def _tool(session: RealtimeServerSession, step: Mapping[str, Any]) -> None:
    name = str(step.get("tool"))
    arguments = step.get("arguments") or {}
    if name == "*":
        # A client may declare its tools in a later session.update: give it a moment.
        deadline = time.monotonic() + TOOLS_WAIT
        while not session.session.get("tools") and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        tools = [t for t in session.session.get("tools") or () if isinstance(t, Mapping)]
        if not tools:
            return
        name = str(tools[0].get("name"))
        arguments = example_arguments(tools[0].get("parameters") or {})
    def count(kind: str) -> int:
        return sum(1 for i in session.items if i.get("type") == kind)

    def answered() -> bool:
        # The tool's output arrived and the model has spoken about it since.
        kinds = [(i.get("type"), i.get("role")) for i in session.items]
        if ("function_call_output", None) not in kinds or session.responses.task is not None:
            return False
        last_output = max(i for i, k in enumerate(kinds) if k[0] == "function_call_output")
        return ("message", "assistant") in kinds[last_output + 1 :]

    calls, outputs = count("function_call"), count("function_call_output")
    await _idle(session)
    await session.caller_says(f"call {name} {json.dumps(arguments)}")
    detection = session._turn_detection()
    if detection is None or not detection.get("create_response", True):
        await _respond(session, {})  # manual turns: the emulator asks for the response
    await _until(lambda: count("function_call") > calls)
    await _until(lambda: count("function_call_output") > outputs and answered())


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


async def play_opening(session: RealtimeServerSession) -> None:
    """Play ``session.script.opening`` (see the module's table)."""
    for step in session.script.opening:
        if "say" in step:
            await _respond(session, {"instructions": f"Say exactly: {step['say']}"})
        elif "caller" in step:
            await _idle(session)
            await session.caller_says(str(step["caller"]))
            await asyncio.sleep(0)
            await _idle(session)
        elif "tool" in step:
            await _tool(session, step)
        elif step.get("hangup"):
            await _idle(session)
            session.conn.start_close(1000, "call ended")
            return
