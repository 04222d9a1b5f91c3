"""OpenAI Realtime: per-event cost and tool round trip, side by side, on one replay server.

    .venv/bin/python benchmarks/bench_openai.py [--events 3000] [--rounds 7] [--tool-turns 300]

The server is ``benchmarks/_replay.py`` in its own process: it recorded the OpenAI
emulator's GA event streams once at start-up and replays each response as one pre-framed
write, so the client's receive path, not the server, sets the pace. ``bench audio N`` is
N ``response.output_audio.delta`` events of 100 ms of 24 kHz PCM16 (4800 bytes, 6400
base64 characters) with one ``response.output_audio_transcript.delta`` per three, plus the
framing events; ``bench text N`` is N ``response.output_text.delta`` events. The same
stream goes, round after round, to each contender in turn:

* **raw**: a ``websockets.asyncio`` client whose loop is ``json.loads(await ws.recv())``;
* **masquerade**: a masquerade session with the OpenAI provider and the built-in
  ``logging`` and ``tracing`` observers (parse, normalize, store the conversation,
  ``Session.emit``), plus an ``on_event`` callback that notices ``response.done``;
* **masquerade + subscriber**: the same with an application reading ``session.events()``;
* **openai SDK**: ``AsyncOpenAI().realtime.connect()`` and a ``recv()`` loop.

Each figure is the median over the rounds with the min..max; ratios are taken per round
(against raw in the same round), so a disturbance of the shared machine hits both sides.
CPU is the client process's ``time.process_time()``. GC pauses are counted with
``gc.callbacks`` while each contender runs.

The tool round trip sends ``call bench_tool {"x": 1}`` and times until the follow-up
response is done (function call, tool, ``function_call_output``, ``response.create`` once
the calling response is done, answer): raw loop, masquerade session (the tool through the
session's tool chain, logging and tracing on) and the SDK, one turn each in turn; p50,
p99, max, and the p50 difference per block of turns.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _replay
from _stats import GcPauses, median_range, percentile

KEY = "bench_key_0123456789abcdef"
Round = Callable[[str], Awaitable[tuple[int, float, float]]]
RAW = "raw websockets + json.loads"
MASQ = "masquerade session"
SDK = "openai SDK recv()"


def user_message(text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def session_update(*, tools: bool) -> str:
    session: dict[str, Any] = {
        "type": "realtime",
        "output_modalities": ["text"],
        "audio": {"input": {"turn_detection": None}},
    }
    if tools:
        session["tools"] = _replay.TOOLS
    return json.dumps({"type": "session.update", "session": session})


# ---------------------------------------------------------------- contenders
async def open_raw(ws_url: str) -> tuple[Round, Callable[[], Awaitable[None]]]:
    from websockets.asyncio.client import connect

    ws = await connect(
        ws_url,
        additional_headers={"Authorization": f"Bearer {KEY}"},
        compression=None,
        max_size=16 * 2**20,
    )
    json.loads(await ws.recv())
    await ws.send(session_update(tools=False))
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


def masquerade_provider(base_url: str, **options: Any) -> Any:
    import masquerade_openai

    return masquerade_openai.OpenAIRealtimeProvider(
        api_key=KEY,
        base_url=base_url,
        transcription=None,
        turn_detection=None,
        output_modalities=["text"],
        renewal={"renew_after": None},
        **options,
    )


async def open_masquerade(
    base_url: str, stack: contextlib.AsyncExitStack, *, subscriber: bool
) -> tuple[Round, Callable[[], Awaitable[None]]]:
    import masquerade_openai
    from masquerade import Host, SessionRequest

    host = await stack.enter_async_context(
        Host(plugins=[masquerade_provider(base_url)], load_entrypoints=False)
    )
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
    conn = await client.realtime.connect(model="gpt-realtime").enter()
    await conn.recv()
    await conn.send(json.loads(session_update(tools=False)))
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


# ---------------------------------------------------------------- tool round trip
Turn = Callable[[], Awaitable[tuple[float, float]]]


def bench_tool(x: int) -> dict[str, int]:
    return {"x": x, "y": x + 1}


async def raw_tool(ws_url: str, stack: contextlib.AsyncExitStack) -> Turn:
    from websockets.asyncio.client import connect

    ws = await stack.enter_async_context(
        connect(ws_url, additional_headers={"Authorization": f"Bearer {KEY}"}, compression=None)
    )
    await ws.recv()
    await ws.send(session_update(tools=True))
    await ws.recv()
    prompt = json.dumps(user_message(_replay.TOOL_PROMPT))

    async def turn() -> tuple[float, float]:
        cpu = time.process_time()
        started = time.perf_counter()
        await ws.send(prompt)
        await ws.send('{"type":"response.create"}')
        done = 0
        while done < 2:
            data = json.loads(await ws.recv())
            kind = data["type"]
            if kind == "response.function_call_arguments.done":
                output = json.dumps(bench_tool(**json.loads(data["arguments"])))
                await ws.send(
                    json.dumps(
                        {
                            "type": "conversation.item.create",
                            "item": {
                                "type": "function_call_output",
                                "call_id": data["call_id"],
                                "output": output,
                            },
                        }
                    )
                )
            elif kind == "response.done":
                done += 1
                if done == 1:  # the follow-up waits for the calling response to end
                    await ws.send('{"type":"response.create"}')
        return time.perf_counter() - started, time.process_time() - cpu

    return turn


async def sdk_tool(base_url: str, stack: contextlib.AsyncExitStack) -> Turn:
    import openai

    client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url)
    conn = await stack.enter_async_context(client.realtime.connect(model="gpt-realtime"))
    await conn.recv()
    await conn.send(json.loads(session_update(tools=True)))
    await conn.recv()

    async def turn() -> tuple[float, float]:
        cpu = time.process_time()
        started = time.perf_counter()
        await conn.send(user_message(_replay.TOOL_PROMPT))
        await conn.send({"type": "response.create"})
        done = 0
        while done < 2:
            event = await conn.recv()
            if event.type == "response.function_call_arguments.done":
                output = json.dumps(bench_tool(**json.loads(event.arguments)))
                await conn.send(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "function_call_output",
                            "call_id": event.call_id,
                            "output": output,
                        },
                    }
                )
            elif event.type == "response.done":
                done += 1
                if done == 1:
                    await conn.send({"type": "response.create"})
        return time.perf_counter() - started, time.process_time() - cpu

    return turn


async def masquerade_tool(base_url: str, stack: contextlib.AsyncExitStack) -> Turn:
    import masquerade_openai
    from masquerade import Host, SessionRequest, tool

    waiter: list[anyio.Event] = [anyio.Event()]
    dones = [0]

    def on_event(event: Any) -> None:
        if event.type == "response.done":
            dones[0] += 1
            if dones[0] == 2:
                waiter[0].set()

    async def bench_tool_async(x: int) -> dict[str, int]:
        """A trivial tool.

        Args:
            x: a number.
        """
        return bench_tool(x)

    request = SessionRequest(provider="openai", tools=[tool(name="bench_tool")(bench_tool_async)])
    host = await stack.enter_async_context(
        Host(plugins=[masquerade_provider(base_url)], load_entrypoints=False)
    )
    session = await stack.enter_async_context(host.session(request, on_event=on_event))
    stack.callback(session.end)
    rt = await masquerade_openai.wait_realtime(session)

    async def turn() -> tuple[float, float]:
        cpu = time.process_time()
        waiter[0] = anyio.Event()
        dones[0] = 0
        started = time.perf_counter()
        await rt.send_text(_replay.TOOL_PROMPT)
        await waiter[0].wait()
        return time.perf_counter() - started, time.process_time() - cpu

    return turn


# ---------------------------------------------------------------- main
async def main(args: argparse.Namespace) -> None:
    process, base_url = _replay.start(args.events)
    ws_url = base_url.replace("http://", "ws://") + "/realtime?model=gpt-realtime"
    print(
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at start; replay server pid {process.pid}"
    )
    gcp = GcPauses()
    try:
        if args.rounds:
            await per_event(args, base_url, ws_url, gcp)
        if args.tool_turns:
            await tool_round_trip(args, base_url, ws_url, gcp)
    finally:
        gcp.close()
        process.terminate()
        process.wait(10)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


async def per_event(args: argparse.Namespace, base_url: str, ws_url: str, gcp: GcPauses) -> None:
    async with contextlib.AsyncExitStack() as stack:
        contenders: dict[str, tuple[Round, Callable[[], Awaitable[None]]]] = {
            RAW: await open_raw(ws_url),
            MASQ: await open_masquerade(base_url, stack, subscriber=False),
            "masquerade + 1 subscriber": await open_masquerade(base_url, stack, subscriber=True),
        }
        if not args.skip_sdk:
            contenders[SDK] = await open_sdk(base_url)
        for mix in ("audio", "text"):
            prompt = f"bench {mix} {args.events}"
            for one, _ in contenders.values():  # warm-up
                await one(prompt)
            cpu: dict[str, list[float]] = {name: [] for name in contenders}
            wall: dict[str, list[float]] = {name: [] for name in contenders}
            frames = 0
            for _ in range(args.rounds):
                for name, (one, _) in contenders.items():
                    gcp.label = f"{mix}/{name}"
                    count, seconds, used = await one(prompt)
                    gcp.label = ""
                    frames = count or frames
                    cpu[name].append(used)
                    wall[name].append(seconds)
            print(f"\n{mix} mix: {frames} frames per response, {args.rounds} rounds")
            print("| contender | CPU µs/event | x raw CPU, per round | wall events/s | GC |")
            print("|---|---:|---:|---:|---|")
            for name in contenders:
                ratios = [c / r for c, r in zip(cpu[name], cpu[RAW], strict=True)]
                print(
                    f"| {name} | {median_range((c / frames * 1e6 for c in cpu[name]), '{:.1f}')} "
                    f"| {median_range(ratios)} "
                    f"| {statistics.median(frames / w for w in wall[name]):,.0f} "
                    f"| {gcp.summary(f'{mix}/{name}')} |"
                )
        for _, close in contenders.values():
            await close()


async def tool_round_trip(
    args: argparse.Namespace, base_url: str, ws_url: str, gcp: GcPauses
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        turns: dict[str, Turn] = {
            "raw websockets loop": await raw_tool(ws_url, stack),
            MASQ: await masquerade_tool(base_url, stack),
        }
        if not args.skip_sdk:
            turns[SDK] = await sdk_tool(base_url, stack)
        for turn in turns.values():
            for _ in range(10):
                await turn()
        times: dict[str, list[list[float]]] = {name: [] for name in turns}
        cpus: dict[str, list[float]] = {name: [] for name in turns}
        per_block = max(1, args.tool_turns // args.tool_blocks)
        for _ in range(args.tool_blocks):
            for name in turns:
                times[name].append([])
            for _ in range(per_block):
                for name, turn in turns.items():  # one turn each, in turn
                    gcp.label = f"tool/{name}"
                    wall, cpu = await turn()
                    gcp.label = ""
                    times[name][-1].append(wall)
                    cpus[name].append(cpu)
    raw = "raw websockets loop"
    print(
        f"\ntool round trip (user message -> tool -> follow-up response.done), "
        f"{per_block * args.tool_blocks} turns each, interleaved, {args.tool_blocks} blocks"
    )
    print(
        "| loop | p50 µs | p99 µs | max µs | p50 - raw p50, per block, µs "
        "| client CPU µs/turn (median) | GC collections |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, blocks in times.items():
        flat = [t for block in blocks for t in block]
        diffs = [
            (percentile(b, 0.5) - percentile(r, 0.5)) * 1e6
            for b, r in zip(blocks, times[raw], strict=True)
        ]
        print(
            f"| {name} | {percentile(flat, 0.5) * 1e6:.0f} | {percentile(flat, 0.99) * 1e6:.0f} "
            f"| {max(flat) * 1e6:.0f} | {median_range(diffs, '{:+.0f}')} "
            f"| {statistics.median(cpus[name]) * 1e6:.0f} | {gcp.summary(f'tool/{name}')} |"
        )

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tool-turns", type=int, default=300)
    parser.add_argument("--tool-blocks", type=int, default=5)
    parser.add_argument("--skip-sdk", action="store_true")
    anyio.run(main, parser.parse_args())
