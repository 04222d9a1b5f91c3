"""Cost of a tool call and of a tool's schema, against calling the bare function.

    .venv/bin/python benchmarks/bench_tools.py [--calls 20000] [--backend asyncio|trio|both]

Invocation rows (per call, tool bodies empty, two arguments ``{"order_id": "A1", "n": 2}``):

- ``bare async``: ``await fn(**args)``;
- ``bare sync in thread``: ``await anyio.to_thread.run_sync(fn, ...)``;
- ``invoke_tool async`` / ``invoke_tool sync``: the built-in invocation (look the tool up,
  validate the arguments with the tool's pydantic model, run it, apply the timeout,
  serialize the result to JSON data, build the ToolResult);
- ``host.invoke_tool async``: the same through the host, for a session as a host starts
  it (the built-in observers have seen its first event: the tracing plugin, with no
  OpenTelemetry SDK, passes its calls through, so the host calls the built-in directly);
- ``host chain async``: the same through the ``masquerade_tool_invoke`` pluggy chain (a
  host with one more wrapper, which does nothing but does not say it passes through);
- ``session.call_tool async``: the whole path a provider uses (``tool.call`` and
  ``tool.result`` events emitted to the built-in observers, the call recorded).

"Overhead" is the row minus its bare row. Schema rows: defining a tool (signature ->
pydantic model -> JSON Schema -> Runway parameters, docstring parsed by griffe) and
producing one dialect uncached, against the host's cached lookup. Rows are measured in
interleaved rounds and the best round is kept, which filters out other processes' noise.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio
import anyio.to_thread

from masquerade import Host, SessionRequest, Tool, hookimpl, tool
from masquerade.builtin.toolschema import openai_schema, runway_schema
from masquerade.events import StatusEvent, ToolCall
from masquerade.session import Session
from masquerade.tools import invoke_tool

ARGS = {"order_id": "A1", "n": 2}


async def lookup_async(order_id: str, n: int = 1) -> dict[str, Any]:
    """Look up an order.

    Args:
        order_id: The order number.
        n: How many lines.
    """
    return {"ok": True}


def lookup_sync(order_id: str, n: int = 1) -> dict[str, Any]:
    """Look up an order.

    Args:
        order_id: The order number.
        n: How many lines.
    """
    return {"ok": True}


def schema_subject(
    day: Literal["monday", "tuesday", "wednesday"], hour: int, note: str | None = None
) -> str:
    """Book a delivery slot.

    Args:
        day: Day of the week.
        hour: Hour of the day.
        note: A note for the driver.
    """
    return ""


class PlainWrapper:
    """A ``masquerade_tool_invoke`` wrapper that hands every call through."""

    @hookimpl(wrapper=True)
    def masquerade_tool_invoke(self, call: ToolCall, session: Session) -> Any:
        return (yield)


async def timed(n: int, step: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await step()
    return (time.perf_counter() - started) / n


async def bench_invocation(calls: int, rounds: int) -> dict[str, float]:
    async_tool = tool(name="lookup_async")(lookup_async)
    sync_tool = tool(name="lookup_sync")(lookup_sync)
    host = Host(load_entrypoints=False)
    session = Session(
        host, SessionRequest(provider="none", tools=[async_tool, sync_tool])
    )
    # What a session started by a host has seen before its first tool call: its first
    # status event, on which the built-in observers decide about it once (the tracing
    # plugin: not traced while no OpenTelemetry SDK listens).
    session.emit(StatusEvent(state="provisioning"))
    chain_host = Host(load_entrypoints=False, plugins=[PlainWrapper()])
    chain_session = Session(chain_host, session.request)
    chain_session.emit(StatusEvent(state="provisioning"))
    call_async = ToolCall(call_id="c", name="lookup_async", arguments=ARGS)
    call_sync = ToolCall(call_id="c", name="lookup_sync", arguments=ARGS)
    ids = iter(range(10**9))

    async def bare_async() -> Any:
        return await lookup_async(**ARGS)  # type: ignore[arg-type]

    async def bare_thread() -> Any:
        return await anyio.to_thread.run_sync(functools.partial(lookup_sync, **ARGS))

    async def builtin_async() -> Any:
        return await invoke_tool(call_async, session)

    async def builtin_sync() -> Any:
        return await invoke_tool(call_sync, session)

    async def host_async() -> Any:
        return await host.invoke_tool(call_async, session)

    async def chain_async() -> Any:
        return await chain_host.invoke_tool(call_async, chain_session)

    async def full_path() -> Any:
        # A fresh call id each time: a repeated id is answered from the first result.
        call = call_async.model_copy(update={"call_id": f"c{next(ids)}"})
        return await session.call_tool(call)

    rows: dict[str, Callable[[], Awaitable[Any]]] = {
        "bare async": bare_async,
        "invoke_tool async": builtin_async,
        "host.invoke_tool async": host_async,
        "host chain async": chain_async,
        "session.call_tool async": full_path,
        "bare sync in thread": bare_thread,
        "invoke_tool sync": builtin_sync,
    }
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, step in rows.items():
            threaded = name.endswith(" sync") or "thread" in name
            n = calls // 10 if threaded else calls
            if name == "session.call_tool async":
                # Keep memory flat between rounds (the parts exist from the first call).
                for part in (session._calls, session._records):
                    if part is not None:
                        part.clear()
                del session._kept[1:]
            per_call = await timed(n, step)
            best[name] = min(best.get(name, per_call), per_call)
    return best


def bench_schema(rounds: int, n: int) -> dict[str, float]:
    host = Host(load_entrypoints=False)
    defined = tool(schema_subject)
    host.tool_schema(defined, "openai")
    host.tool_schema(defined, "runway")
    tool(schema_subject)  # warm up imports (griffe is imported on first use)

    def define() -> None:
        Tool(schema_subject)

    def describe() -> None:
        openai_schema(defined)
        runway_schema(defined)

    def cached() -> None:
        host.tool_schema(defined, "openai")
        host.tool_schema(defined, "runway")

    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn, count in (
            ("define a tool (model + both schemas, uncached)", define, n),
            ("openai + runway dicts of a defined tool, uncached", describe, n * 10),
            ("host.tool_schema openai + runway (cached)", cached, n * 100),
        ):
            started = time.perf_counter()
            for _ in range(count):
                fn()
            per = (time.perf_counter() - started) / count
            best[name] = min(best.get(name, per), per)
    return best


def us(seconds: float) -> str:
    return f"{seconds * 1e6:9.2f} us"


def report(backend: str, rows: dict[str, float]) -> None:
    print(f"\ninvocation, backend={backend} (best of rounds, per call)")
    print(f"  {'row':28} {'per call':>12} {'overhead':>12}")
    for name, value in rows.items():
        threaded = name.endswith(" sync") or "thread" in name
        base = rows["bare sync in thread"] if threaded else rows["bare async"]
        overhead = "" if name.startswith("bare") else us(value - base)
        print(f"  {name:28} {us(value):>12} {overhead:>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="both", choices=["asyncio", "trio", "both"])
    args = parser.parse_args()
    backends = ["asyncio", "trio"] if args.backend == "both" else [args.backend]
    for backend in backends:
        rows = anyio.run(bench_invocation, args.calls, args.rounds, backend=backend)
        report(backend, rows)
    schema = bench_schema(args.rounds, 200)
    print("\nschema generation (per tool, 3 parameters with a docstring)")
    for name, value in schema.items():
        print(f"  {name:48} {us(value)}")


if __name__ == "__main__":
    main()
