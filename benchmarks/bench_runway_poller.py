"""The shared poller with many Runway sessions provisioning at once, on the emulator.

    .venv/bin/python benchmarks/bench_runway_poller.py [--sessions 1000] [--queued 0]
                                                       [--eager] [--backend asyncio]

The emulator runs in its own process (``masquerade emulate runway``), so that it does not
share the GIL with the client being measured. Every session is a real masquerade session
of the ``runway`` provider: create -> NOT_READY (``--queued`` seconds in the queue, then
2 s provisioning) -> READY -> ``ready`` event, then the session is ended (DELETE: it never
joined its room). Sessions start at ``--rate`` per second (default 50/s: 1,000 sessions
arrive over 20 s, so that 1,000 are provisioning at once only with ``--queued``; the
machine, 2 cores shared with the emulator, serves about 500 requests per second).

Reported:

* status requests per session, and per session per second of provisioning (a fixed 1 s
  poll loop, like Runway's own ``pollUntilReady``, makes 1.0 per second);
* the time from the moment the emulator made a session READY (its create answer + the
  plan's queue and provisioning time) to the session's ``ready`` event;
* client CPU per status poll, two ways: one ``poll()`` after another on one session
  (the cost of one status request: httpx, parsing, mapping), and the CPU of the client
  during the run divided by the polls made (this includes everything else the sessions
  do -- creating, events, ending with DELETE, reading results -- so it is an upper bound).

``--eager`` runs the same load with a tighter poller (0.1 s first, 0.5 s cap, 1 s while
queued) to show the requests-versus-latency trade.

``--no-secret-registry`` stubs out ``masquerade.register_secret`` for this run, to show the
poller without the cost of registering one new session key per session (the registry
recompiles one regular expression of every known secret on each registration, which is
quadratic in the number of sessions; fixed since, see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import anyio

from masquerade import Host, Poller, ProvisioningStatus, SessionRequest
from masquerade_runway import RunwayProvider, RunwaySession

PROVISIONING = 2.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_emulator(queued: float) -> tuple[subprocess.Popen[str], str, str]:
    plan = {"steps": [], "plan": {"queued": queued, "provisioning": PROVISIONING}}
    handle, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(handle, "w") as file:
        json.dump(plan, file)
    process = subprocess.Popen(
        [sys.executable, "-m", "masquerade.cli", "emulate", "runway", "--script", path],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    base_url = process.stdout.readline().rsplit(" ", 1)[1].strip()
    api_key = process.stdout.readline().split(": ", 1)[1].strip()
    return process, base_url, api_key


async def cpu_per_poll(provider: RunwayProvider, polls: int = 500) -> float:
    handle = await provider.create(SessionRequest(provider="runway", avatar="influencer"))
    for _ in range(20):  # warm up the connection pool
        await handle.poll()
    cpu0 = time.process_time()
    for _ in range(polls):
        await handle.poll()
    per_poll = (time.process_time() - cpu0) / polls
    await handle.end("benchmark")
    await handle.result()
    return per_poll


async def main(
    sessions: int, queued: float, eager: bool, seed: int, no_registry: bool, rate: float
) -> dict[str, Any]:
    rng = random.Random(seed)
    if no_registry:
        import masquerade._redact

        masquerade._redact.register_secret = lambda value: None  # type: ignore[assignment]
        for module in ("_client", "_models", "_session", "_room"):
            mod = sys.modules[f"masquerade_runway.{module}"]
            if hasattr(mod, "register_secret"):
                mod.register_secret = lambda value: None  # type: ignore[attr-defined]
    process, base_url, api_key = start_emulator(queued)
    try:
        provider = RunwayProvider(
            base_url=base_url, api_key=api_key, room="emulator", end_grace=0.5, result_wait=0.5
        )
        poller = (
            Poller(initial_interval=0.1, max_interval=0.5, queued_interval=1.0)
            if eager
            else Poller()  # the defaults users get
        )
        polls: dict[str, int] = {}
        created_at: dict[str, float] = {}
        ready_at: dict[str, float] = {}
        failures: dict[str, int] = {}
        original_poll = RunwaySession.poll

        async def counted_poll(self: RunwaySession) -> ProvisioningStatus:
            polls[self.id] = polls.get(self.id, 0) + 1
            return await original_poll(self)

        RunwaySession.poll = counted_poll  # type: ignore[method-assign]
        original_create = provider.create

        async def timed_create(request: SessionRequest) -> RunwaySession:
            handle = await original_create(request)
            created_at[handle.id] = time.monotonic()
            return handle

        provider.create = timed_create  # type: ignore[method-assign]

        async def one(host: Host, delay: float) -> None:
            await anyio.sleep(delay)
            request = SessionRequest(
                provider="runway",
                avatar="influencer",
                options={"backend": False},
                provisioning_timeout=120,
            )
            async with host.session(request) as session:
                async for event in session.events():
                    if event.type == "ready":
                        assert session.provider_session_id is not None
                        ready_at[session.provider_session_id] = time.monotonic()
                        session.end("benchmark")
            if session.provider_session_id not in ready_at:
                assert session.result is not None
                failures[session.result.failure or "?"] = failures.get(
                    session.result.failure or "?", 0
                ) + 1

        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, poller.provisioning)
                await anyio.sleep(0.05)

        cpu0 = time.process_time()
        t0 = time.monotonic()
        host = Host(plugins=[provider], load_entrypoints=False, poller=poller)
        async with host, anyio.create_task_group() as tg:
            tg.start_soon(watch)
            async with anyio.create_task_group() as sessions_tg:
                for _ in range(sessions):
                    sessions_tg.start_soon(one, host, rng.uniform(0, sessions / rate))
            tg.cancel_scope.cancel()
        wall = time.monotonic() - t0
        cpu_run = time.process_time() - cpu0
        RunwaySession.poll = original_poll  # type: ignore[method-assign]

        if failures:
            print("sessions that never became ready:", failures)
        wait = queued + PROVISIONING
        lags = [ready_at[sid] - (created_at[sid] + wait) for sid in ready_at]
        per_session = [polls[sid] for sid in ready_at]
        rates = [polls[sid] / (ready_at[sid] - created_at[sid]) for sid in ready_at]
        return {
            "sessions": sessions,
            "ready": len(ready_at),
            "queued_s": queued,
            "arrivals_per_s": rate,
            "peak_provisioning": peak,
            "poller": "eager" if eager else "default",
            "secret_registry": "stubbed" if no_registry else "real",
            "wall_s": wall,
            "polls": poller.stats.polls,
            "poll_errors": poller.stats.errors,
            "max_in_flight": poller.stats.max_in_flight.get("runway", 0),
            "polls_per_session_mean": statistics.mean(per_session),
            "polls_per_session_max": max(per_session),
            "polls_per_session_per_s": statistics.mean(rates),
            "ready_lag_p50_ms": pct(lags, 0.5) * 1000,
            "ready_lag_p95_ms": pct(lags, 0.95) * 1000,
            "ready_lag_max_ms": max(lags) * 1000,
            "cpu_per_poll_us": await cpu_per_poll(provider) * 1e6,
            "cpu_per_poll_whole_run_us": cpu_run / max(1, poller.stats.polls) * 1e6,
        }
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--queued", type=float, default=0.0, help="seconds in the queue")
    parser.add_argument("--eager", action="store_true", help="a tighter poller")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-secret-registry", action="store_true")
    parser.add_argument("--rate", type=float, default=50.0, help="session starts per second")
    args = parser.parse_args()
    out = anyio.run(
        main,
        args.sessions,
        args.queued,
        args.eager,
        args.seed,
        args.no_secret_registry,
        args.rate,
        backend=args.backend,
    )
    width = max(len(k) for k in out)
    for key, value in out.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
