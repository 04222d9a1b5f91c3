"""The tool round trip: a function call from the model, one answer back, then a follow-up.

The model's function call arrives in pieces (``response.function_call_arguments.delta``,
then ``.done``; sometimes only in ``response.output_item.done`` or ``response.done``).
:class:`ToolRoundTrip` starts each call once (by ``call_id``), runs it in the masquerade
session's task group (:meth:`masquerade.Session.call_tool`: events, hooks, tracing,
exactly one result), sends the ``function_call_output`` item, and asks for the follow-up
response once every tool of the turn has answered. Calls of a response that was cancelled
never run. A runner task that has answered a call waits for the next one, so a call
usually costs a wake-up rather than a new task; it runs once the receive loop has handled
the frames already received and waits for the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

import anyio

from masquerade import SessionClosed
from masquerade.errors import EventParseError
from masquerade.events import ProviderEvent, ToolCall, decode_json

from ._conversation import RealtimeConversation
from ._fast import builder
from ._link import RealtimeLink
from ._shared import EMPTY, event_id, item_id, noop_emit
from ._transport import ConnectionClosed
from ._turns import TurnTaking

if TYPE_CHECKING:
    from masquerade import Session

__all__ = ["ToolRoundTrip"]

_provider_event = builder(ProviderEvent)
_tool_call = builder(ToolCall)


#: The most characters of undecodable arguments kept in the call's record.
MAX_RAW_ARGUMENTS = 4096


def _arguments(raw: Any) -> dict[str, Any] | str:
    """A call's arguments: the decoded object, or the text (cut to
    :data:`MAX_RAW_ARGUMENTS`) when it is not a JSON object within the size and nesting
    bounds; the invocation then answers with an error naming the problem. Never raises,
    so every call the model makes gets its answer."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        return f"(arguments sent as {type(raw).__name__}, not a JSON string)"
    if not raw.strip():
        return {}
    try:
        parsed = decode_json(raw)
    except EventParseError:
        return raw[:MAX_RAW_ARGUMENTS]
    return parsed if isinstance(parsed, dict) else raw[:MAX_RAW_ARGUMENTS]


class ToolRoundTrip:
    """Starts each function call once and sends its output back.

    Attributes:
        seen: the call ids already started (or refused because the session was ending).
    """

    # Slots: thousands of idle sessions each hold one of these.
    __slots__ = (
        "_calls", "_idle", "conversation", "emit", "link", "seen", "session",
        "turns",
    )

    def __init__(
        self, link: RealtimeLink, turns: TurnTaking, conversation: RealtimeConversation
    ) -> None:
        self.link = link
        self.turns = turns
        self.conversation = conversation
        self.emit: Callable[[Any], Any] = noop_emit
        self.session: Session | None = None
        self.seen: AbstractSet[str] = EMPTY  # a set from the first add
        # Calls are run by runner tasks of the session's task group: a runner that has
        # answered its call waits for the next one (one waits at most), so a turn's call
        # costs a wake-up rather than a new task. Calls that overlap get a runner each.
        self._calls: list[tuple[str, str, dict[str, Any] | str]] = []  # no deque block
        self._idle: anyio.Event | None = None

    # ------------------------------------------------------------ handlers
    # ``shallow``: the frame's text showed the payload nests within the bound.
    def on_arguments_delta(self, data: dict[str, Any], shallow: bool = False) -> None:
        item = data.get("item_id")
        if item:
            self.conversation.ensure(item, "function_call").add_arguments(data["delta"])
        self.emit(_provider_event({"type": "provider", "name": data["type"], "payload": data},
                                  shallow))

    def on_arguments_done(self, data: dict[str, Any], shallow: bool = False) -> None:
        item_ref = data.get("item_id")
        call = {"call_id": data["call_id"], "name": data.get("name"),
                "arguments": data.get("arguments")}
        if item_ref:
            item = self.conversation.ensure(item_ref, "function_call")
            item.call_id = call["call_id"]
            if isinstance(call["arguments"], str):
                item.arguments = call["arguments"]
            call["name"] = call["name"] or item.name
        # The beta event has no name: output_item.done starts the call then. A response
        # that was cancelled may still finish its arguments: those calls never run.
        if call["name"] and data.get("response_id") not in self.turns.abandoned:
            self.start(call)
        self.emit(_provider_event({"type": "provider", "name": data["type"], "payload": data},
                                  shallow))

    # ------------------------------------------------------------ the round trip
    def start(self, payload: Mapping[str, Any]) -> None:
        """Start a function call (once per ``call_id``) in the session's task group: an
        idle runner takes it, else a new runner is spawned."""
        call_id = payload.get("call_id")
        name = payload.get("name")
        if not isinstance(call_id, str) or not call_id or call_id in self.seen:
            return
        if not isinstance(name, str) or not name:
            return
        session = self.session
        if session is None:
            return
        seen = self.seen
        if not isinstance(seen, set):
            seen = self.seen = set()
        seen.add(call_id)
        arguments = _arguments(payload.get("arguments"))
        if session.state == "ended":
            return  # the session is ending: the call gets no answer to send
        self.turns.tools_running += 1
        call = (call_id, name, arguments)
        idle = self._idle
        if idle is not None:
            self._idle = None
            self._calls.append(call)
            idle.set()
        else:
            try:
                session.spawn(self._runner, call, name="openai tool runner")
            except SessionClosed:  # the session is ending: the call gets no answer to send
                self.turns.tools_running -= 1
                return
        # The runner runs as soon as the receive loop waits for the next frame: the frames
        # already received are handled first (microseconds), with no extra pass of the
        # event loop per call.

    async def _runner(self, call: tuple[str, str, dict[str, Any] | str]) -> None:
        """Run ``call``, then the calls handed over while this runner waits idle; ends
        when another runner is already idle (cancelled with the session's task group)."""
        calls = self._calls
        while True:
            await self._run(*call)
            while not calls:  # (a busy runner may take a call handed to the idle one)
                if self._idle is not None:
                    return
                idle = self._idle = anyio.Event()
                try:
                    await idle.wait()
                except anyio.get_cancelled_exc_class():
                    # The session's task group is ending: no call can come any more. Not
                    # re-raised, so no traceback keeps this task's frames (and with them
                    # the session) alive after the end.
                    return
            call = calls.pop(0)

    async def _run(self, call_id: str, name: str, arguments: dict[str, Any] | str) -> None:
        session = self.session
        assert session is not None
        turns = self.turns
        try:
            # Not walked for depth here (True): arguments that nest too deep are answered
            # with an error by the invocation, as every other bad argument is.
            result = await session.call_tool(_tool_call({
                "type": "tool.call", "call_id": call_id, "name": name, "arguments": arguments,
                "kind": None,
            }, True))
            output = result.output_text()
            payload = {"id": item_id(), "type": "function_call_output", "call_id": call_id,
                       "output": output}
            # Stored before sending: if the link drops now, the renewal replays it.
            self.conversation.upsert({**payload, "status": "completed"})
            self.conversation.attach_output(call_id, output)
            turns.follow_up()
            try:
                await self.link.send({"type": "conversation.item.create",
                                      "event_id": event_id(), "item": payload})
            except ConnectionClosed:
                pass  # replayed by the renewal
        finally:
            turns.tools_running -= 1
        turns.pump()
        await self.link.flush()
