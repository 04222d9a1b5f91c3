"""The shared poller's own cost per poll as the number of provisioning sessions grows.

    .venv/bin/python benchmarks/bench_poller.py [--sizes 1000,5000] [--seconds 5] [--repeats 3]

``n`` sessions wait in :meth:`Poller.wait_ready` at once (they started spread over one
interval, so their polls are spread too); each one's ``poll()`` is an in-process
stand-in that answers ``not_ready`` after ``--poll-ms`` (default 0: at once; no
network), so what is measured is
the poller's scheduling: picking due sessions, starting polls, re-entering them, waking
up. Reported per size: polls per second, client CPU per poll (``time.process_time()``),
schedule entries looked at per poll and wakeups per poll (``PollerStats``), median with
the min..max over repeats. A poller that scans every session per wakeup costs more per
poll as ``n`` grows; a deadline heap stays flat.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stats import median_range

from masquerade import Poller, ProvisioningStatus

NOT_READY = ProvisioningStatus(state="not_ready", provider_status="NOT_READY")


class Provisioning:
    """A provider session that stays provisioning; ``poll()`` answers after ``delay``
    seconds (a status request's round trip), with no network and no work."""

    id = "bench"
    requires_polling = True

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def poll(self) -> ProvisioningStatus:
        await anyio.sleep(self.delay)
        return NOT_READY


async def wait(poller: Poller, i: int, delay: float, poll_s: float) -> None:
    await anyio.sleep(delay)  # sessions start spread over one interval, as they would
    handle: Any = Provisioning(poll_s)
    await poller.wait_ready(handle, session_id=f"s{i}", provider="bench", timeout=3600)


async def one(n: int, seconds: float, interval: float, poll_s: float) -> dict[str, float]:
    poller = Poller(initial_interval=interval, max_interval=interval, growth=1.0,
                    concurrency=64)
    async with anyio.create_task_group() as tg:
        await tg.start(poller.run)
        for i in range(n):
            tg.start_soon(wait, poller, i, i / n * interval, poll_s)
        await anyio.sleep(2 * interval + 0.5)  # all of them in the schedule
        stats = poller.stats
        polls0, wake0 = stats.polls, stats.wakeups
        seen0 = getattr(stats, "examined", 0)
        cpu0, t0 = time.process_time(), time.perf_counter()
        await anyio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        polls = stats.polls - polls0
        result = {
            "polls_per_s": polls / wall,
            "cpu_per_poll_us": cpu / max(1, polls) * 1e6,
            "examined_per_poll": (getattr(stats, "examined", 0) - seen0) / max(1, polls),
            "wakeups_per_poll": (stats.wakeups - wake0) / max(1, polls),
        }
        tg.cancel_scope.cancel()
    return result


async def main(args: argparse.Namespace) -> None:
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in args.sizes}
    for _ in range(args.repeats):
        for n in args.sizes:  # sizes alternate, so drift hits each alike
            runs[n].append(await one(n, args.seconds, args.interval, args.poll_ms / 1000))
    print(f"every session polled every {args.interval:g} s, a poll takes {args.poll_ms:g} ms; "
          f"{args.seconds:g} s measured, "
          f"{args.repeats} repeats (median (min..max))")
    print("| sessions | polls/s | CPU µs per poll | entries looked at per poll | wakeups per poll"
          " |")
    print("|---:|---:|---:|---:|---:|")
    for n, found in runs.items():
        def col(key: str, fmt: str, found: Any = found) -> str:
            return median_range((r[key] for r in found), fmt)
        print(f"| {n:,} | {col('polls_per_s', '{:,.0f}')} | {col('cpu_per_poll_us', '{:.1f}')} "
              f"| {col('examined_per_poll', '{:.2f}')} | {col('wakeups_per_poll', '{:.2f}')} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poll-ms", type=float, default=0.0)
    anyio.run(main, parser.parse_args())
