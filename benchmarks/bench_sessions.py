"""Many sessions in one process: idle memory, opening rate, event latency, GC pauses.

    .venv/bin/python benchmarks/bench_sessions.py [--sizes 1000,2000,5000] [--active 500]
        [--seconds 6] [--repeats 2]

Against ``benchmarks/_replay.py`` (its own process), for each N and each contender, in a
fresh child process (so memory figures start from the same empty interpreter), runs
alternate between the contenders:

* **raw**: one task per connection, ``websockets.asyncio`` connect, the handshake
  (``session.created``, a configuring ``session.update``, ``session.updated``) and a
  ``json.loads`` receive loop;
* **masquerade**: one task per session holding ``async with host.session(...)`` open on
  one :class:`~masquerade.Host` with the OpenAI provider and the built-in logging and
  tracing observers, an ``on_event`` callback reading the events.

Each child opens N sessions (32 opening at a time) and reports the opening rate; after a
``gc.collect()`` and a second of idling, the resident memory added per session (RSS, from
``/proc/self/statm``, minus the RSS after one warm-up session); then ``--active`` of the
sessions ask the server for a stream of 20 transcript deltas per second each (the rest
stay idle) and for ``--seconds`` it measures each event's latency (the server puts its
``time.monotonic()`` in the delta; the client subtracts it on arrival), and counts GC
collections and their pauses (``gc.callbacks``) over the whole run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _replay
from _stats import GcPauses, median_range, percentile, rss_bytes

KEY = "bench_key_0123456789abcdef"
UPDATE = json.dumps(
    {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {"input": {"turn_detection": None, "transcription": None}},
        },
    }
)
STREAM = [
    json.dumps(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "stream"}],
            },
        }
    ),
    '{"type":"response.create"}',
]


class Child:
    def __init__(self, n: int, active: int, seconds: float) -> None:
        self.n, self.active, self.seconds = n, active, seconds
        self.latencies: list[float] = []
        self.measuring = False
        self.opened = 0
        self.stop = anyio.Event()
        self.all_open = anyio.Event()
        self.starters: list[Any] = []

    def note(self, stamp: str) -> None:
        if self.measuring:
            self.latencies.append(time.monotonic() - float(stamp))

    def opened_one(self) -> None:
        self.opened += 1
        if self.opened == self.n + 1:  # the warm-up session is one of them
            self.all_open.set()

    async def run(self, hold: Any) -> dict[str, Any]:
        gcp = GcPauses()
        limit = anyio.Semaphore(32)
        async with anyio.create_task_group() as tg:
            warm = anyio.Event()

            async def first() -> None:
                await hold(self, warm.set)

            tg.start_soon(first)
            await warm.wait()
            gc.collect()
            await anyio.sleep(0.5)
            rss0 = rss_bytes()
            cpu0 = time.process_time()
            started = time.perf_counter()
            for _ in range(self.n):
                await limit.acquire()
                tg.start_soon(hold, self, limit.release)
            await self.all_open.wait()
            opens = self.n / (time.perf_counter() - started)
            cpu_per_open = (time.process_time() - cpu0) / self.n
            gc.collect()
            await anyio.sleep(1.0)
            gc.collect()
            rss1 = rss_bytes()
            objects = len(gc.get_objects())
            for start in self.starters[1 : self.active + 1]:
                await start()
            await anyio.sleep(1.0)  # streams ramp up
            gcp.pauses.clear()
            self.measuring = True
            await anyio.sleep(self.seconds)
            self.measuring = False
            found = gcp.pauses.get("", [])
            result = {
                "rss_per_session": (rss1 - rss0) / self.n,
                "opens_per_s": opens,
                "cpu_per_open": cpu_per_open,
                "gc_objects": objects,
                "events": len(self.latencies),
                "p50": percentile(self.latencies, 0.5),
                "p99": percentile(self.latencies, 0.99),
                "max": max(self.latencies),
                "gc": len(found),
                "gc2": sum(1 for g, _ in found if g == 2),
                "gc_max": max((p for _, p in found), default=0.0),
            }
            print(json.dumps(result), flush=True)
            os._exit(0)  # closing thousands of sessions is not what is measured
        return result


async def hold_raw(child: Child, opened: Any) -> None:
    from websockets.asyncio.client import connect

    async with connect(
        child.url, additional_headers={"Authorization": f"Bearer {KEY}"}, compression=None
    ) as ws:
        json.loads(await ws.recv())
        await ws.send(UPDATE)
        json.loads(await ws.recv())

        async def start() -> None:
            for message in STREAM:
                await ws.send(message)

        child.starters.append(start)
        child.opened_one()
        opened()
        async for message in ws:
            data = json.loads(message)
            if data["type"] == "response.output_audio_transcript.delta":
                child.note(data["delta"])


async def hold_masquerade(child: Child, opened: Any) -> None:
    import masquerade_openai
    from masquerade import SessionRequest

    def on_event(event: Any) -> None:
        if event.type == "transcript.delta":
            child.note(event.text)

    async with child.host.session(SessionRequest(provider="openai"), on_event=on_event) as s:
        rt = await masquerade_openai.wait_realtime(s)

        async def start() -> None:
            await rt.send_text("stream")

        child.starters.append(start)
        child.opened_one()
        opened()
        await child.stop.wait()


async def child_main(args: argparse.Namespace) -> None:
    child = Child(args.n, args.active, args.seconds)
    child.url = args.url.replace("http://", "ws://") + "/realtime?model=gpt-realtime"
    if args.child == "raw":
        await child.run(hold_raw)
        return
    import masquerade_openai
    from masquerade import Host

    provider = masquerade_openai.OpenAIRealtimeProvider(
        api_key=KEY,
        base_url=args.url,
        transcription=None,
        turn_detection=None,
        output_modalities=["text"],
    )  # default renewal options: each session renews after 55 minutes, as a user's would
    async with Host(plugins=[provider], load_entrypoints=False) as host:
        child.host = host
        await child.run(hold_masquerade)


def raise_fd_limit() -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(args: argparse.Namespace) -> None:
    process, base_url = _replay.start(3)
    print(
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at start"
    )
    results: dict[tuple[int, str], list[dict[str, Any]]] = {}
    try:
        for _ in range(args.repeats):
            for n in args.sizes:
                for name in ("raw", "masquerade"):
                    out = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            name,
                            "--n",
                            str(n),
                            "--active",
                            str(min(args.active, n)),
                            "--seconds",
                            str(args.seconds),
                            "--url",
                            base_url,
                        ],
                        capture_output=True,
                        text=True,
                        timeout=600,
                    )
                    lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
                    if not lines:
                        raise SystemExit(f"{name} N={n} failed:\n{out.stderr[-3000:]}")
                    results.setdefault((n, name), []).append(json.loads(lines[-1]))
                    print(f"  N={n} {name}: {lines[-1]}", flush=True)
    finally:
        process.terminate()
        process.wait(10)
    print(f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print(
        f"{args.repeats} runs per row (median (min..max)); {args.active} sessions streaming "
        f"20 events/s for {args.seconds:g} s, the rest idle"
    )
    print(
        "| N | contender | RSS KiB/session | opens/s | CPU µs/open | latency p50 ms | p99 ms "
        "| max ms "
        "| GC collections (gen-2), longest pause ms | GC-tracked objects |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for (n, name), runs in results.items():

        def col(key: str, scale: float = 1.0, fmt: str = "{:.1f}", runs: Any = runs) -> str:
            return median_range((r[key] * scale for r in runs), fmt)

        print(
            f"| {n} | {name} | {col('rss_per_session', 1 / 1024)} "
            f"| {col('opens_per_s', 1, '{:,.0f}')} | {col('cpu_per_open', 1e6, '{:,.0f}')} "
            f"| {col('p50', 1e3, '{:.2f}')} | {col('p99', 1e3, '{:.2f}')} | {col('max', 1e3)} "
            f"| {col('gc', 1, '{:.0f}')} ({col('gc2', 1, '{:.0f}')}), {col('gc_max', 1e3)} "
            f"| {statistics.median(r['gc_objects'] for r in runs):,.0f} |"
        )
    print("\nratios masquerade / raw, per run pair (median (min..max)):")
    for n in args.sizes:
        pairs = list(zip(results[(n, "raw")], results[(n, "masquerade")], strict=True))
        rss = median_range(m["rss_per_session"] / r["rss_per_session"] for r, m in pairs)
        print(
            f"  N={n}: RSS/session {rss}"
            f", opens/s {median_range(m['opens_per_s'] / r['opens_per_s'] for r, m in pairs)}"
            f", CPU/open {median_range(m['cpu_per_open'] / r['cpu_per_open'] for r, m in pairs)}"
            f", p99 {median_range(m['p99'] / r['p99'] for r, m in pairs)}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1000,2000,5000", type=lambda s: [int(x) for x in s.split(",")]
    )
    parser.add_argument("--active", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=["raw", "masquerade"])
    parser.add_argument("--n", type=int)
    parser.add_argument("--url")
    args = parser.parse_args()
    raise_fd_limit()
    if args.child:
        anyio.run(child_main, args)
    else:
        main(args)
