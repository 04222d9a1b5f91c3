"""Per-event cost of the session loop against a bare parse loop, side by side.

    .venv/bin/python benchmarks/bench_session.py [--events 200000] [--backend asyncio|trio]

Parsing (``json.loads`` + ``parse_event`` of an audio-heavy mix) is measured on its own
row. The loops compared then start from the same parsed events: a bare loop that hands
them to nobody, and the session loop, which hands each event to a real
``Session.emit``: the ``masquerade_session_event`` observers (0, 1 or 3 no-op plugins; the
built-ins are disabled so only the hand-off is measured) and one subscriber that reads
every event through ``session.events()``. Both loops yield to the event loop every 100
frames, as a websocket reader does between socket reads, so the subscriber keeps up.

"Hand-off" is (session loop - bare loop - the observers' own call cost), per event: what
masquerade adds beyond parsing and the hook call itself. Runs are interleaved and the best
of each row is kept, which filters out noise from other processes on the machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from typing import Any

import anyio
import anyio.lowlevel

from masquerade import Host, SessionRequest, hookimpl
from masquerade.events import BaseEvent, parse_event
from masquerade.provider import ProviderOutcome

BATCH = 100


def make_frames(n: int) -> list[str]:
    audio = base64.b64encode(bytes(4800)).decode()  # 100 ms of 24 kHz PCM16
    mix: list[dict[str, Any]] = []
    for i in range(n):
        k = i % 10
        if k < 7:
            mix.append({"type": "audio.delta", "data": audio, "response_id": "r1"})
        elif k < 9:
            mix.append(
                {"type": "transcript.delta", "role": "assistant", "text": "word ", "turn": 1}
            )
        else:
            mix.append({"type": "response.started", "response_id": f"r{i}"})
    return [json.dumps(m) for m in mix]


class Noop:
    @hookimpl
    def masquerade_session_event(self, session: Any, event: BaseEvent) -> None:
        return None


def noop_cost(frames: int, observers: int) -> float:
    fn = Noop().masquerade_session_event
    ev = parse_event(make_frames(1)[0])
    t0 = time.perf_counter()
    for _ in range(frames):
        for _ in range(observers):
            fn(None, ev)
    return (time.perf_counter() - t0) / frames


class BenchSession:
    requires_polling = False

    def __init__(self, frames: list[str], out: dict[str, float]) -> None:
        self.id = "bench"
        self.frames = frames
        self.out = out

    async def poll(self) -> Any:
        raise NotImplementedError

    async def join_credentials(self) -> None:
        return None

    async def connect(self, session: Any) -> None:
        emit = session.emit
        events = self.frames
        t0 = time.perf_counter()
        for i in range(0, len(events), BATCH):
            for event in events[i : i + BATCH]:
                emit(event)
            await anyio.lowlevel.checkpoint()
        self.out["elapsed"] = time.perf_counter() - t0

    async def end(self, reason: str) -> None:
        return None

    async def result(self) -> ProviderOutcome:
        return ProviderOutcome()


class BenchProvider:
    name = "bench"
    tool_dialect = "openai"

    def __init__(self, frames: list[str], out: dict[str, float]) -> None:
        self.frames = frames
        self.out = out

    async def create(self, request: SessionRequest) -> BenchSession:
        return BenchSession(self.frames, self.out)

    @hookimpl
    def masquerade_register_providers(self, register: Any) -> None:
        register(self)


async def parse_loop(frames: list[str]) -> float:
    sink: list[BaseEvent] = []
    t0 = time.perf_counter()
    for i in range(0, len(frames), BATCH):
        for raw in frames[i : i + BATCH]:
            sink.append(parse_event(json.loads(raw)))
        sink.clear()
        await anyio.lowlevel.checkpoint()
    return time.perf_counter() - t0


async def bare_loop(events: list[BaseEvent]) -> float:
    """The same iteration and yields as the session loop, handing events to nobody."""
    sink: list[BaseEvent] = []
    t0 = time.perf_counter()
    for i in range(0, len(events), BATCH):
        for event in events[i : i + BATCH]:
            sink.append(event)
        sink.clear()
        await anyio.lowlevel.checkpoint()
    return time.perf_counter() - t0


async def session_loop(frames: list[Any], observers: int) -> tuple[float, int]:
    out: dict[str, float] = {}
    plugins: list[object] = [BenchProvider(frames, out)] + [Noop() for _ in range(observers)]
    host = Host(
        load_entrypoints=False,
        plugins=plugins,
        environ={"MASQUERADE_DISABLE_PLUGINS": "logging,tracing"},
    )
    received = 0
    async with host.session(SessionRequest(provider="bench")) as session:
        async for _ in session.events(replay=False):
            received += 1
    assert session.result is not None
    return out["elapsed"], session.result.dropped_audio


async def main(n: int, repeats: int) -> None:
    frames = make_frames(n)
    events = [parse_event(json.loads(f)) for f in frames]
    rows: dict[str, list[float]] = {"parse": [], "bare": [], "s0": [], "s1": [], "s3": []}
    dropped = 0
    for _ in range(repeats):  # interleaved, so machine noise hits every row alike
        rows["parse"].append(await parse_loop(frames) / n)
        rows["bare"].append(await bare_loop(events) / n)
        for k in (0, 1, 3):
            elapsed, d = await session_loop(events, k)
            dropped += d
            rows[f"s{k}"].append(elapsed / n)
    best = {k: min(v) for k, v in rows.items()}
    print(f"{n} events, audio mix (70% audio.delta of 4800 B), best of {repeats} interleaved runs")
    print(f"{'loop':<44}{'ns/event':>10}{'hand-off ns':>13}")
    print(f"{'parse only (json.loads + parse_event)':<44}{best['parse'] * 1e9:>10.0f}{'-':>13}")
    print(f"{'bare loop over parsed events (no hand-off)':<44}{best['bare'] * 1e9:>10.0f}{'-':>13}")
    for k in (0, 1, 3):
        total = best[f"s{k}"]
        hook = min(noop_cost(n, k) for _ in range(3))
        handoff = total - best["bare"] - hook
        label = f"session, {k} observer(s) + 1 subscriber"
        print(f"{label:<44}{total * 1e9:>10.0f}{handoff * 1e9:>13.0f}")
    print(f"observer call itself: {noop_cost(n, 1) * 1e9:.0f} ns per observer per event")
    print(f"audio deltas dropped by the subscriber: {dropped}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    anyio.run(main, args.events, args.repeats, backend=args.backend)
