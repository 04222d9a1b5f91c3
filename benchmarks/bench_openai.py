"""OpenAI Realtime: per-event cost and tool round trip, side by side, on one loopback stream.

    .venv/bin/python benchmarks/bench_openai.py [--events 3000] [--rounds 7] [--tool-turns 300]

The emulator runs in its own process (``masquerade emulate openai``), so the server
works on one core and every contender reads on the other. It streams realistic GA events
with its load-generation directive: ``bench audio N`` is N ``response.output_audio.delta``
events of 100 ms of 24 kHz PCM16 (4800 bytes, 6400 base64 characters) with one
``response.output_audio_transcript.delta`` per three, plus the usual framing events;
``bench text N`` is N ``response.output_text.delta`` events. Each round sends a user
message and a ``response.create`` and times until ``response.done``; the same stream goes,
in turn, to:

* **raw**: a ``websockets.asyncio`` client whose loop is ``json.loads(await ws.recv())``;
* **masquerade**: a masquerade session (the OpenAI provider: parse, normalize, store the
  conversation, ``Session.emit`` to the built-in observers logging and tracing, plus an
  ``on_event`` callback that notices ``response.done``);
* **masquerade + subscriber**: the same with an application reading ``session.events()``;
* **openai SDK**: ``AsyncOpenAI().realtime.connect()`` and a ``recv()`` loop;
* **openai-agents**: a ``RealtimeSession`` (``RealtimeRunner``) iterated until
  ``agent_end``.

Rounds are interleaved across contenders and the best round of each is reported (the
machine is shared; the best round is the least disturbed). The tool round trip sends
``call bench_tool {...}`` and times until the follow-up response is done (function call,
tool, ``function_call_output``, sequenced ``response.create``, answer), for raw and
masquerade, and reports p50 and p99.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

KEY = "emu_bench_key_0123456789abcdef"
Round = Callable[[str], Awaitable[tuple[int, float, float]]]


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    cli = Path(sys.executable).parent / "masquerade"
    process = subprocess.Popen(
        [str(cli), "emulate", "openai", "--port", "0", "--api-key", KEY],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        raise SystemExit(f"the emulator did not start: {line!r}")
    process.stdout.readline()
    return process, line.rsplit(" ", 1)[1].strip()


def user_message(text: str) -> dict[str, Any]:
    return {"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}


# ---------------------------------------------------------------- contenders
async def open_raw(ws_url: str) -> tuple[Round, Callable[[], Awaitable[None]]]:
    from websockets.asyncio.client import connect

    ws = await connect(ws_url, additional_headers={"Authorization": f"Bearer {KEY}"},
                       compression=None, max_size=16 * 2**20)
    json.loads(await ws.recv())

    async def one(prompt: str) -> tuple[int, float, float]:
        loads, recv = json.loads, ws.recv
        cpu = time.process_time()
        started = time.perf_counter()
        await ws.send(json.dumps(user_message(prompt)))
        await ws.send('{"type":"response.create"}')
        frames = 0
        while True:
            data = loads(await recv())
            frames += 1
            if data["type"] == "response.done":
                return frames, time.perf_counter() - started, time.process_time() - cpu

    return one, ws.close


async def open_masquerade(
    base_url: str, stack: contextlib.AsyncExitStack, *, subscriber: bool
) -> tuple[Round, Callable[[], Awaitable[None]]]:
    import masquerade_openai
    from masquerade import Host, SessionRequest

    provider = masquerade_openai.OpenAIRealtimeProvider(
        api_key=KEY, base_url=base_url, transcription=None, turn_detection=None,
        renewal={"renew_after": None},
    )
    host = await stack.enter_async_context(Host(plugins=[provider], load_entrypoints=False))
    waiter: list[anyio.Event] = [anyio.Event()]

    def on_event(event: Any) -> None:
        if event.type == "response.done":
            waiter[0].set()

    session = await stack.enter_async_context(
        host.session(SessionRequest(provider="openai"), on_event=on_event)
    )
    rt = await masquerade_openai.wait_realtime(session)

    async def consume() -> None:
        async for _event in session.events(replay=False):
            pass

    if subscriber:
        group = await stack.enter_async_context(anyio.create_task_group())
        group.start_soon(consume)
        stack.callback(group.cancel_scope.cancel)

    async def one(prompt: str) -> tuple[int, float, float]:
        waiter[0] = anyio.Event()
        cpu = time.process_time()
        started = time.perf_counter()
        await rt.send_text(prompt)
        await waiter[0].wait()
        if subscriber:
            await anyio.lowlevel.checkpoint()  # let the subscriber drain what arrived
        return 0, time.perf_counter() - started, time.process_time() - cpu

    async def close() -> None:
        session.end()

    return one, close


async def open_sdk(base_url: str) -> tuple[Round, Callable[[], Awaitable[None]]]:
    import openai

    client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url)
    manager = client.realtime.connect(model="gpt-realtime")
    conn = await manager.enter()
    await conn.recv()

    async def one(prompt: str) -> tuple[int, float, float]:
        cpu = time.process_time()
        started = time.perf_counter()
        await conn.send(user_message(prompt))
        await conn.send({"type": "response.create"})
        frames = 0
        while True:
            event = await conn.recv()
            frames += 1
            if event.type == "response.done":
                return frames, time.perf_counter() - started, time.process_time() - cpu

    return one, conn.close


async def open_agents(ws_url: str) -> tuple[Round, Callable[[], Awaitable[None]]]:
    from agents.realtime import RealtimeAgent, RealtimeRunner

    agent = RealtimeAgent(name="bench", instructions="You are a benchmark.")
    runner = RealtimeRunner(agent)
    session = await runner.run(model_config={"api_key": KEY, "url": ws_url})
    await session.__aenter__()
    events = session.__aiter__()

    async def one(prompt: str) -> tuple[int, float, float]:
        cpu = time.process_time()
        started = time.perf_counter()
        await session.send_message(prompt)
        while True:
            event = await events.__anext__()
            if event.type == "agent_end":
                return 0, time.perf_counter() - started, time.process_time() - cpu

    async def close() -> None:
        await session.__aexit__(None, None, None)

    return one, close


# ---------------------------------------------------------------- tool round trip
async def raw_tool_turn(ws_url: str, turns: int) -> list[tuple[float, float]]:
    from websockets.asyncio.client import connect

    timings: list[tuple[float, float]] = []
    async with connect(ws_url, additional_headers={"Authorization": f"Bearer {KEY}"},
                       compression=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "output_modalities": ["text"],
            "audio": {"input": {"turn_detection": None}},
            "tools": [{"type": "function", "name": "bench_tool", "description": "b",
                       "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}],
        }}))
        while json.loads(await ws.recv())["type"] != "session.updated":
            pass
        for _ in range(turns):
            cpu = time.process_time()
            started = time.perf_counter()
            await ws.send(json.dumps(user_message('call bench_tool {"x": 1}')))
            await ws.send('{"type":"response.create"}')
            done = 0
            while done < 2:
                data = json.loads(await ws.recv())
                kind = data["type"]
                if kind == "response.function_call_arguments.done":
                    output = json.dumps(bench_tool(**json.loads(data["arguments"])))
                    await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                        "type": "function_call_output", "call_id": data["call_id"],
                        "output": output}}))
                elif kind == "response.done":
                    done += 1
                    if done == 1:  # the follow-up waits for the calling response to end
                        await ws.send('{"type":"response.create"}')
            timings.append((time.perf_counter() - started, time.process_time() - cpu))
    return timings


def bench_tool(x: int) -> dict[str, int]:
    """A trivial tool.

    Args:
        x: a number.
    """
    return {"x": x, "y": x + 1}


async def masquerade_tool_turn(base_url: str, turns: int) -> list[tuple[float, float]]:
    import masquerade_openai
    from masquerade import Host, SessionRequest, tool

    provider = masquerade_openai.OpenAIRealtimeProvider(
        api_key=KEY, base_url=base_url, transcription=None, turn_detection=None,
        output_modalities=["text"], renewal={"renew_after": None},
    )
    waiter: list[anyio.Event] = [anyio.Event()]
    dones = [0]

    def on_event(event: Any) -> None:
        if event.type == "response.done":
            dones[0] += 1
            if dones[0] == 2:
                waiter[0].set()

    timings: list[float] = []
    async def bench_tool_async(x: int) -> dict[str, int]:
        """A trivial tool (async: it runs inline, as the raw loop's does).

        Args:
            x: a number.
        """
        return bench_tool(x)

    request = SessionRequest(provider="openai", tools=[tool(name="bench_tool")(bench_tool_async)])
    async with Host(plugins=[provider], load_entrypoints=False) as host, host.session(
        request, on_event=on_event
    ) as session:
        rt = await masquerade_openai.wait_realtime(session)
        for _ in range(turns):
            waiter[0] = anyio.Event()
            dones[0] = 0
            cpu = time.process_time()
            started = time.perf_counter()
            await rt.send_text('call bench_tool {"x": 1}')
            await waiter[0].wait()
            timings.append((time.perf_counter() - started, time.process_time() - cpu))
        session.end()
    return timings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---------------------------------------------------------------- main
async def main(args: argparse.Namespace) -> None:
    process, base_url = start_emulator()
    ws_url = base_url.replace("http://", "ws://") + "/realtime?model=gpt-realtime"
    try:
        await run(args, base_url, ws_url)
    finally:
        process.terminate()
        process.wait(10)


async def run(args: argparse.Namespace, base_url: str, ws_url: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        best, frames, names = await measure(args, base_url, ws_url, stack)
    report(args, best, frames, names)
    await tool_round_trip(args, base_url, ws_url)


async def measure(
    args: argparse.Namespace, base_url: str, ws_url: str, stack: contextlib.AsyncExitStack
) -> tuple[dict[tuple[str, str, str], float], dict[str, int], list[str]]:
    contenders: dict[str, tuple[Round, Callable[[], Awaitable[None]]]] = {
        "raw websockets + json.loads": await open_raw(ws_url),
        "masquerade session": await open_masquerade(base_url, stack, subscriber=False),
        "masquerade + 1 subscriber": await open_masquerade(base_url, stack, subscriber=True),
    }
    if not args.skip_sdk:
        contenders["openai SDK recv()"] = await open_sdk(base_url)
    if not args.skip_agents:
        contenders["openai-agents RealtimeSession"] = await open_agents(ws_url)
    frames: dict[str, int] = {}
    best: dict[tuple[str, str, str], float] = {}
    for mix in ("audio", "text"):
        prompt = f"bench {mix} {args.events}"
        # Warm-up (imports, caches), then the rounds, interleaved.
        for one, _ in contenders.values():
            await one(prompt)
        for _ in range(args.rounds):
            for name, (one, _) in contenders.items():
                count, seconds, cpu = await one(prompt)
                if count:
                    frames[mix] = count
                for kind, value in (("wall", seconds), ("cpu", cpu)):
                    key = (mix, name, kind)
                    best[key] = min(best.get(key, float("inf")), value)
    for _, close in contenders.values():
        await close()
    return best, frames, list(contenders)


def report(
    args: argparse.Namespace,
    best: dict[tuple[str, str, str], float],
    frames: dict[str, int],
    names: list[str],
) -> None:
    print(f"\nloopback stream, best of {args.rounds} rounds ({sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs)")
    raw_name = "raw websockets + json.loads"
    for mix in ("audio", "text"):
        n = frames[mix]
        raw_cpu = best[(mix, raw_name, "cpu")] / n
        print(f"\n{mix} mix: {n} frames per response")
        print("| contender | CPU µs/event | x raw CPU | wall events/s |")
        print("|---|---:|---:|---:|")
        for name in names:
            cpu = best[(mix, name, "cpu")] / n
            wall = best[(mix, name, "wall")] / n
            print(f"| {name} | {cpu * 1e6:.1f} | {cpu / raw_cpu:.2f} | {1 / wall:,.0f} |")
        if (mix, "openai SDK recv()", "cpu") in best:
            sdk, masq = "openai SDK recv()", "masquerade session"
            cpu_ratio = best[(mix, sdk, "cpu")] / best[(mix, masq, "cpu")]
            wall_ratio = best[(mix, sdk, "wall")] / best[(mix, masq, "wall")]
            print(f"masquerade vs SDK: {cpu_ratio:.2f}x less CPU per event, "
                  f"{wall_ratio:.2f}x the wall-clock throughput")


async def tool_round_trip(args: argparse.Namespace, base_url: str, ws_url: str) -> None:
    raw: list[tuple[float, float]] = []
    masq: list[tuple[float, float]] = []
    per_block = args.tool_turns // args.tool_blocks
    # Blocks of turns, alternating, so drift on a shared machine hits both alike.
    for _ in range(args.tool_blocks):
        raw += (await raw_tool_turn(ws_url, per_block + 5))[5:]
        masq += (await masquerade_tool_turn(base_url, per_block + 5))[5:]
    print(f"\ntool round trip (user message -> tool -> follow-up response.done), "
          f"{len(raw)} turns each")
    print("| loop | wall p50 µs | wall p99 µs | client CPU µs/turn (median) |")
    print("|---|---:|---:|---:|")
    rows = []
    for name, values in (("raw websockets loop", raw), ("masquerade session", masq)):
        wall = [w for w, _ in values]
        cpu = statistics.median(c for _, c in values)
        rows.append((percentile(wall, 0.5), percentile(wall, 0.99), cpu))
        print(f"| {name} | {rows[-1][0] * 1e6:.0f} | {rows[-1][1] * 1e6:.0f} | "
              f"{cpu * 1e6:.0f} |")
    diff = [(m - r) * 1e6 for r, m in zip(rows[0], rows[1], strict=True)]
    print(f"| difference | {diff[0]:+.0f} | {diff[1]:+.0f} | {diff[2]:+.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tool-turns", type=int, default=300)
    parser.add_argument("--tool-blocks", type=int, default=3)
    parser.add_argument("--skip-sdk", action="store_true")
    parser.add_argument("--skip-agents", action="store_true")
    anyio.run(main, parser.parse_args())
