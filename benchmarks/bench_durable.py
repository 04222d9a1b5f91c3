"""Durable runs (masquerade-dbos): submissions/s, time to READY, 500-run throughput.

    .venv/bin/python benchmarks/bench_durable.py [--submissions 500] [--latency 40]
                                                [--throughput 500] [--capacity 20]

1. **Submissions per second**: ``DurableGraph.submit`` (a process that only submits) on
   PostgreSQL (a throwaway local cluster) and on SQLite, one at a time and 20 at once.
2. **Submission -> READY**: time from the call that starts a run to the ``ready`` event of
   its Runway session (join credentials in hand), p50/p99, through the queue (an
   in-process worker on PostgreSQL) against a direct ``graph.run``; the Runway emulator
   runs in-process. Runs one after another, so this is latency, not load.
3. **Throughput**: 500 runs through 2 ``masquerade worker`` processes (capacity 20 each)
   on PostgreSQL against the same 500 runs by ``graph.run`` in one process (40 at once),
   each a short call on the Runway emulator running out of process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _stats import percentile
from durable_graph import SCRIPT, Bench, graph

from masquerade import Host, hookimpl
from masquerade_dbos import DurableGraph
from masquerade_dbos.testing import postgres_cluster
from masquerade_runway.emulator import RunwayEmulator

HERE = Path(__file__).parent


class ReadyClock:
    """Records when each run's session became ready (by ``metadata["run"]``)."""

    name = "ready-clock"

    def __init__(self) -> None:
        self.ready: dict[str, float] = {}

    @hookimpl
    def masquerade_session_event(self, session: Any, event: Any) -> None:
        if event.type == "ready":
            self.ready[str(session.request.metadata.get("run"))] = time.perf_counter()


def _ms(values: list[float]) -> str:
    return f"{percentile(values, 0.5) * 1000:.0f} / {percentile(values, 0.99) * 1000:.0f}"


async def submissions(url: str, count: int) -> tuple[float, float]:
    async with DurableGraph(graph, database_url=url, worker=False) as durable:
        started = time.perf_counter()
        for i in range(count):
            await durable.submit(Bench(name=f"s{i}"))
        one_by_one = count / (time.perf_counter() - started)
        started = time.perf_counter()
        for batch in range(0, count, 20):
            await asyncio.gather(
                *(durable.submit(Bench(name=f"c{i}")) for i in range(batch, batch + 20))
            )
        concurrent = count / (time.perf_counter() - started)
    return one_by_one, concurrent


async def latency(url: str, count: int, polling: float) -> tuple[list[float], list[float]]:
    clock = ReadyClock()
    async with RunwayEmulator(script=SCRIPT) as emulator:
        host = Host(plugins=[emulator.provider(), clock], load_entrypoints=False)
        direct: list[float] = []
        async with host:
            await graph.run(Bench(name="warm-up"), host=host)
            for i in range(count):
                started = time.perf_counter()
                await graph.run(Bench(name=f"d{i}"), host=host)
                direct.append(clock.ready[f"d{i}"] - started)
        queued: list[float] = []
        durable = DurableGraph(graph, database_url=url, host=host, polling_interval=polling)
        async with durable:
            await (await durable.submit(Bench(name="warm-up"))).result()
            for i in range(count):
                started = time.perf_counter()
                run = await durable.submit(Bench(name=f"q{i}"))
                await run.result()
                queued.append(clock.ready[f"q{i}"] - started)
    return direct, queued


def _emulator() -> tuple[subprocess.Popen[str], dict[str, str]]:
    script = HERE / "results" / ".bench_durable_script.json"
    import json

    script.write_text(json.dumps(SCRIPT))
    process = subprocess.Popen(
        [sys.executable, "-m", "masquerade.cli", "emulate", "runway", "--api-key", "emu_bench",
         "--script", str(script)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    url = ""
    for line in process.stdout:
        if " listening on " in line:
            url = line.rsplit(" ", 1)[-1].strip()
            break
    threading.Thread(target=process.stdout.read, daemon=True).start()
    script.unlink()
    return process, {"RUNWAYML_BASE_URL": url, "RUNWAYML_API_SECRET": "emu_bench"}


def _worker(url: str, name: str, capacity: int, env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "masquerade.cli", "worker", str(HERE / "durable_graph.py"),
         "--database-url", url, "--executor-id", name, "--capacity", str(capacity),
         "--poll-interval", "0.1"],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(f"worker {name} runs"):
            break
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process


async def throughput(url: str, count: int, capacity: int) -> tuple[float, float]:
    emulator, env = _emulator()
    os.environ.update(env)
    try:
        # one process, graph.run, as many at once as the two workers together
        limit = asyncio.Semaphore(2 * capacity)
        async with Host() as host:

            async def one(i: int) -> None:
                async with limit:
                    final = await graph.run(Bench(name=f"t{i}"), host=host)
                    assert final.done

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(count)))
            direct = count / (time.perf_counter() - started)
        workers = [_worker(url, f"bench-{i}", capacity, env) for i in range(2)]
        try:
            async with DurableGraph(graph, database_url=url, worker=False) as durable:
                started = time.perf_counter()
                runs = [await durable.submit(Bench(name=f"w{i}")) for i in range(count)]
                for run in runs:
                    assert (await run.result()).done
                queued = count / (time.perf_counter() - started)
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(60)
    finally:
        emulator.terminate()
        emulator.wait(10)
    return direct, queued


def _remove_sqlite(url: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with postgres_cluster() as pg:
        sqlite = f"sqlite:///{HERE / 'results' / '.bench_durable.sqlite'}"
        print("\n## Submissions per second (submit only)\n")
        print("| database | one at a time | 20 at once |\n|---|---:|---:|")
        for label, url in (("PostgreSQL 15", pg + "?application_name=bench"), ("SQLite", sqlite)):
            one, many = await submissions(url, args.submissions)
            print(f"| {label} | {one:.0f}/s | {many:.0f}/s |")
        _remove_sqlite(sqlite)

        print(f"\n## Submission -> READY, {args.latency} runs one after another (ms)\n")
        print("| path | p50 / p99 | p50 ratio |\n|---|---:|---:|")
        for polling in (0.05, 0.5):
            direct, queued = await latency(pg, args.latency, polling)
            base = percentile(direct, 0.5)
            if polling == 0.05:
                print(f"| direct `graph.run` | {_ms(direct)} | 1.0x |")
            ratio = percentile(queued, 0.5) / base
            print(f"| queue, PostgreSQL, poll {polling}s | {_ms(queued)} | {ratio:.1f}x |")

        print(f"\n## Throughput: {args.throughput} runs, short Runway calls (emulator)\n")
        direct, queued = await throughput(pg, args.throughput, args.capacity)
        print("| path | runs/s | ratio |\n|---|---:|---:|")
        print(f"| one process, `graph.run`, {2 * args.capacity} at once | {direct:.1f} | 1.0x |")
        print(
            f"| 2 workers x capacity {args.capacity}, PostgreSQL | {queued:.1f} | "
            f"{queued / direct:.2f}x |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=500)
    parser.add_argument("--latency", type=int, default=40)
    parser.add_argument("--throughput", type=int, default=500)
    parser.add_argument("--capacity", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
