"""Backend tools over RPC: the avatar worker calls a ``backend_rpc`` tool, the session
answers through ``session.call_tool`` (one handler per tool, registered on the room)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio

from masquerade.errors import EventParseError
from masquerade.events import ErrorEvent, ToolCall, ToolResult, decode_json

from ._room import RpcFailure, RpcInvocation

if TYPE_CHECKING:
    from masquerade import Session

__all__ = ["ToolEndpoint", "rpc_arguments", "WORKER_PREFIX", "MAX_RAW_ARGUMENTS"]

#: Only participants whose identity starts with this may call backend tools.
WORKER_PREFIX = "worker:"
#: The most characters of an undecodable RPC payload kept in the tool call's record.
MAX_RAW_ARGUMENTS = 4096


def rpc_arguments(payload: str) -> dict[str, Any] | str:
    """The arguments of a ``backend_rpc`` call from its RPC payload: the decoded object
    (its ``args`` when the worker wrapped them), or the raw text, cut to
    :data:`MAX_RAW_ARGUMENTS`, when it is not a JSON object within the size and nesting
    bounds (the call is then answered with an error naming the problem). Never raises."""
    if not payload.strip():
        return {}
    try:
        parsed = decode_json(payload)
    except EventParseError:
        return payload[:MAX_RAW_ARGUMENTS] if len(payload) > MAX_RAW_ARGUMENTS else payload
    if isinstance(parsed, dict) and parsed.get("args") is not None:
        parsed = parsed["args"]
    return parsed if isinstance(parsed, dict) else payload[:MAX_RAW_ARGUMENTS]


class ToolEndpoint:
    """Answers the RPC calls of one ``backend_rpc`` tool through ``session.call_tool``."""

    def __init__(self, session: Session, name: str, timeout_seconds: float) -> None:
        self.session = session
        self.name = name
        self.timeout_seconds = timeout_seconds

    def _budget(self, invocation: RpcInvocation) -> float:
        # Answer before the worker gives up: keep a margin for the reply's trip back (a
        # quarter of the wait, at most 0.5 s: the default 4 s wait leaves the tool its 3.5 s).
        waits = min(self.timeout_seconds, invocation.response_timeout or self.timeout_seconds)
        return max(0.05, waits - min(0.5, waits * 0.25))

    async def __call__(self, invocation: RpcInvocation) -> str:
        caller = invocation.caller_identity
        if not caller.startswith(WORKER_PREFIX):
            self.session.emit(
                ErrorEvent(
                    code="rpc_unauthorized",
                    message=f"refused a call of tool {self.name!r} from {caller!r}: only the "
                    f"avatar worker ({WORKER_PREFIX}...) may call backend tools",
                )
            )
            raise RpcFailure(f"Unauthorized caller: {caller}")
        call = ToolCall(
            call_id=invocation.request_id,
            name=self.name,
            arguments=rpc_arguments(invocation.payload),
            kind="backend_rpc",
        )
        answered = anyio.Event()
        box: list[ToolResult] = []
        budget = self._budget(invocation)

        async def run() -> None:
            try:
                # Bounded by the worker's wait: what the avatar is told is what is recorded.
                box.append(await self.session.call_tool(call, timeout=budget))
            finally:
                answered.set()

        # The call runs in the session's task group, so that it is answered (and recorded)
        # once even if this RPC handler is cancelled.
        self.session.spawn(run, name=f"tool {self.name}")
        with anyio.move_on_after(budget + 1.0):
            await answered.wait()
        if not box:
            raise RpcFailure(
                f"tool {self.name!r} did not answer within {budget:.2f}s (the avatar waits "
                f"{self.timeout_seconds:g}s)"
            )
        result = box[0]
        if result.error is not None:
            raise RpcFailure(result.error)
        return json.dumps(result.output, default=str)
