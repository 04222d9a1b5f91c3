"""Writing a plugin: the hook patterns (register, observe, wrap, veto, replace)."""

import sys
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel

import masquerade
from masquerade import Host, SessionRequest, hookimpl, tool
from masquerade.testing import ScriptedProvider

LOG: list[str] = []


@tool
def store_hours(day: str) -> str:
    """Opening hours of the store on a given day.

    Args:
        day: Day of the week, like Saturday.
    """
    return "closed" if day.lower() == "sunday" else "open 9:00-18:00"


# 1. Offer a tool to every session.
@hookimpl
def masquerade_register_tools(register: Callable[[Any], None]) -> None:
    register(store_hours)


# 2. Observe events: a plain function, cheap, checking event.type first (hot path).
@hookimpl
def masquerade_session_event(event: Any) -> None:
    if event.type == "tool.result" and event.error:
        LOG.append(f"alert: {event.name} failed ({event.error_type})")


# 3. Receive every final result; an async implementation is awaited.
@hookimpl
async def masquerade_session_ended(result: masquerade.SessionResult) -> None:
    await anyio.lowlevel.checkpoint()  # e.g. await crm.attach_transcript(...)
    LOG.append(f"ended {result.outcome} with {len(result.tool_calls)} tool call(s)")


# 4. Wrap every tool call: the inner awaitable comes from `yield`.
@hookimpl(wrapper=True)
def masquerade_tool_invoke(call: Any) -> Any:
    inner = yield

    async def timed() -> Any:
        started = time.perf_counter()
        result = await inner  # the ToolResult of the built-in invocation
        elapsed_ms = (time.perf_counter() - started) * 1000
        LOG.append(f"{call.name}: {result.error_type or 'ok'} after {elapsed_ms:.1f} ms")
        return result

    return timed()


# 5. Veto a session before anything is created at the provider.
@hookimpl(wrapper=True)
def masquerade_session_create(request: SessionRequest) -> Any:
    if request.max_duration is not None and request.max_duration > 600:
        raise masquerade.ConfigurationError(
            "sessions over 10 minutes are not allowed here", hint="lower max_duration"
        )
    return (yield)


async def main() -> list[str]:
    this_module = sys.modules[__name__]  # this module is the plugin
    provider = ScriptedProvider(
        [
            {"tool": "store_hours", "args": {"day": "Sunday"}},
            {"tool": "store_hours", "args": {}},  # missing argument: an error answer
        ]
    )
    async with Host(plugins=[provider, this_module], load_entrypoints=False) as host:
        await host.run_session(SessionRequest(provider="scripted"))  # plugin tools only
        too_long = await host.run_session(SessionRequest(provider="scripted", max_duration=900))
    LOG.append(f"vetoed: {too_long.outcome}: {too_long.failure}")
    print("\n".join(LOG))
    return LOG


if __name__ == "__main__":
    anyio.run(main)
