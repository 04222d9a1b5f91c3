"""The scripted avatar worker: plays a session's script in its room (speaks, calls the
backend's tools over RPC, sends client events, hangs up) and records the transcript."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from ._script import (
    ANY_TOOL,
    CallTool,
    Fail,
    Hangup,
    Say,
    SendClientEvent,
    SendData,
    Step,
    Wait,
    example_arguments,
)
from ._session import iso

if TYPE_CHECKING:
    from ._room import Room

__all__ = ["ScriptedWorker"]

logger = logging.getLogger("masquerade.runway.emulator")


class ScriptedWorker:
    """The avatar of one room. It starts when the script's audience is there (by default
    when a frontend joined; see :attr:`SessionPlan.start_on`) and stops when the room
    closes. With an ``integration`` your agent owns the conversation: the avatar says and
    calls nothing of the script, whose ``wait``, ``hangup`` and ``fail`` steps still play
    (the user hanging up, the call failing)."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.session = room.session
        self.identity = f"worker:{room.session.id[:8]}"
        self.task: asyncio.Task[None] | None = None
        self.turns = {"user": 0, "assistant": 0}
        self._waiting = False

    def maybe_start(self) -> None:
        """Start the script if its audience is there (called on every join, registration
        and when the session starts running)."""
        if self.task is not None or self.room.closed:
            return
        start_on = self.session.plan.start_on
        if start_on == "join":
            self._start()
            return
        backends = [p for p in self.room.participants.values() if p.kind == "backend"]
        if start_on is None and self.session.running_at is None:
            return  # the avatar greets the user when a frontend joins
        if start_on == "backend" and not backends:
            return
        rpc_tools = {t["name"] for t in self.session.tools if t.get("type") == "backend_rpc"}
        if rpc_tools and backends and not any(rpc_tools <= p.methods for p in backends):
            # Give the backend a moment to register its methods, then start anyway.
            if not self._waiting:
                self._waiting = True
                self.room.emulator.later(1.0, self._start_anyway)
            return
        self._start()

    def _start_anyway(self) -> None:
        if self.task is None and not self.room.closed and self.room.participants:
            self._start()

    def _start(self) -> None:
        loop = self.room.emulator.loop
        assert loop is not None
        self.task = loop.create_task(self._play())

    async def _play(self) -> None:
        delay = self.session.plan.step_delay
        try:
            for step in self.session.script:
                if self.room.closed:
                    return
                if delay:
                    await asyncio.sleep(delay)
                await self._step(step)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("the emulated worker of session %s failed", self.session.id)

    def _record(self, **turn: Any) -> None:
        turn.setdefault("timestamp", iso(time.time()))
        self.session.transcript.append(turn)

    async def _step(self, step: Step) -> None:
        if self.session.body.get("integration") and not isinstance(step, Wait | Hangup | Fail):
            return  # your agent speaks and calls: not the emulated avatar
        if isinstance(step, Say):
            turn = self.turns[step.role]
            self.turns[step.role] += 1
            size = max(1, -(-len(step.say) // step.chunks))
            for start in range(0, max(len(step.say), 1), size):
                await self.room.say_data(
                    {
                        "type": "transcription",
                        "role": step.role,
                        "turn": turn,
                        "text": step.say[start : start + size],
                    }
                )
            self._record(role=step.role, content=step.say)
        elif isinstance(step, CallTool):
            await self._call_tool(step)
        elif isinstance(step, SendClientEvent):
            call_id = f"call_{uuid.uuid4().hex[:12]}"
            event = {"type": "client_event", "tool": step.client_event, "args": step.args}
            await self.room.say_data(event)
            if step.ack:
                await self.room.say_data(
                    {"type": "client_event", "tool": step.client_event,
                     "args": {"status": "event_sent"}}
                )
            self._record(
                role="assistant",
                content=None,
                toolCalls=[{"id": call_id, "name": step.client_event, "arguments": step.args}],
            )
        elif isinstance(step, SendData):
            text = step.data if isinstance(step.data, str) else json.dumps(step.data)
            await self.room.broadcast(
                text.encode(), sender=step.sender or self.identity, topic=step.topic
            )
        elif isinstance(step, Wait):
            await asyncio.sleep(step.wait)
        elif isinstance(step, Hangup):
            self.room.emulator.finish(self.session, "COMPLETED", by="user")
        elif isinstance(step, Fail):
            self.room.emulator.finish(self.session, "FAILED", failure=step.fail, code=step.code)

    async def _call_tool(self, step: CallTool) -> None:
        if step.tool == ANY_TOOL:  # the session's first backend tool, example arguments
            tools = [t for t in self.session.tools if t.get("type") == "backend_rpc"]
            if not tools:
                return
            step = CallTool(tool=str(tools[0]["name"]), args=example_arguments(tools[0]))
        call_id = step.id or f"call_{uuid.uuid4().hex[:12]}"
        if step.payload is not None:
            payload = step.payload
        else:
            payload = json.dumps(step.args if step.bare else {"args": step.args})
        started = time.perf_counter()
        reply = await self.room.call(
            step.tool,
            payload,
            caller=step.caller or self.identity,
            timeout=step.timeout or self.session.tool_timeout(step.tool),
        )
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        result: dict[str, Any] = {"id": call_id, "name": step.tool, "durationMs": duration_ms}
        if reply.get("error"):
            result["result"] = None
            result["error"] = str(reply["error"].get("message"))
        else:
            raw = reply.get("payload")
            try:
                result["result"] = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                result["result"] = raw
        self._record(
            role="assistant",
            content=None,
            toolCalls=[{"id": call_id, "name": step.tool, "arguments": step.args}],
            toolResults=[result],
        )


    def cancel(self) -> None:
        task = self.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
