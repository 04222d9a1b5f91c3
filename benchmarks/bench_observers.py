"""Per-event cost of the built-in ``logging`` and ``tracing`` observers, side by side.

    .venv/bin/python benchmarks/bench_observers.py [--events 200000] [--repeats 5]
                                                    [--backend asyncio|trio]

A tiny provider emits prebuilt events through a real ``Session.emit`` in a tight loop
(yielding to the event loop every 100 events, as a websocket reader does between socket
reads). The same loop runs with:

* **none**: both built-ins disabled (``MASQUERADE_DISABLE_PLUGINS=logging,tracing``);
* **built-ins, no SDK**: ``logging`` and ``tracing`` as shipped, no OpenTelemetry SDK
  provider configured (the API is a no-op), root logger at WARNING;
* **built-ins + SDK**: ``tracing`` given an SDK ``TracerProvider`` (batch processor, an
  exporter that drops everything) and an SDK ``MeterProvider``;
* **built-ins + SDK + INFO logs**: the same, with ``masquerade`` logging at INFO into a
  ``NullHandler`` (records are built and formatted away).

Two event mixes: **audio only** (``audio.delta``), and **turns**: per 100 events one
``response.started``, 70 ``audio.delta`` of 4800 B, 26 ``transcript.delta``, one
``transcript.done``, one ``speech.started`` and one ``response.done`` with usage, i.e. a
span opened and closed every 100 events (a turn starts each batch). Each batch of 100
events is timed; a round's figure is its median batch, and the best round of each row is
kept (this filters out other processes on the machine). "added" is the row minus **none**
for the same mix. Target: at most +1 µs per event on the audio mix.
"""

from __future__ import annotations

import argparse
import base64
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import anyio.lowlevel

from masquerade import Host, SessionRequest, hookimpl
from masquerade.builtin.tracing import Tracing
from masquerade.events import (
    AudioDelta,
    BaseEvent,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    TranscriptDelta,
    TranscriptDone,
)
from masquerade.provider import ProviderOutcome

BATCH = 100


def audio_only(n: int) -> list[BaseEvent]:
    chunk = base64.b64encode(bytes(4800)).decode()  # 100 ms of 24 kHz PCM16
    event = AudioDelta(data=chunk, response_id="r1")
    return [event] * n


def turns(n: int) -> list[BaseEvent]:
    chunk = base64.b64encode(bytes(4800)).decode()
    events: list[BaseEvent] = []
    turn = 0
    while len(events) < n:
        rid = f"resp_{turn}"
        events.append(ResponseStarted(response_id=rid))
        events.extend(AudioDelta(data=chunk, response_id=rid) for _ in range(70))
        events.extend(
            TranscriptDelta(role="assistant", text="word ", turn=turn) for _ in range(26)
        )
        events.append(TranscriptDone(role="assistant", text="word " * 26, turn=turn))
        events.append(SpeechStarted(audio_ms=1200))
        events.append(
            ResponseDone(response_id=rid, usage={"input_tokens": 900, "output_tokens": 120})
        )
        turn += 1
    return events[:n]


class _Handle:
    requires_polling = False

    def __init__(self, events: Sequence[BaseEvent], timings: list[float]) -> None:
        self.id = "bench-1"
        self.events = events
        self.timings = timings

    async def poll(self) -> Any:  # pragma: no cover - never polled
        raise AssertionError

    async def join_credentials(self) -> None:
        return None

    async def connect(self, session: Any) -> None:
        emit = session.emit
        events = self.events
        checkpoint = anyio.lowlevel.checkpoint
        clock = time.perf_counter_ns
        batches = self.timings
        for start in range(0, len(events), BATCH):
            batch = events[start : start + BATCH]
            began = clock()
            for event in batch:
                emit(event)
            batches.append((clock() - began) / len(batch))
            await checkpoint()

    async def end(self, reason: str) -> None:
        return None

    async def result(self) -> ProviderOutcome:
        return ProviderOutcome()


class BenchProvider:
    name = "bench"
    tool_dialect = "openai"

    def __init__(self, events: Sequence[BaseEvent]) -> None:
        self.events = events
        self.timings: list[float] = []

    async def create(self, request: SessionRequest) -> _Handle:
        return _Handle(self.events, self.timings)

    @hookimpl
    def masquerade_register_providers(self, register: Callable[[Any], None]) -> None:
        register(self)


def sdk_tracing() -> Tracing:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return Tracing(tracer_provider=tracer_provider, meter_provider=meter_provider)


CONFIGS: dict[str, dict[str, Any]] = {
    "none": {"deny": "logging,tracing"},
    "built-ins, no SDK": {"deny": ""},
    "built-ins + SDK": {"deny": "tracing", "sdk": True},
    "built-ins + SDK + INFO logs": {"deny": "tracing", "sdk": True, "info": True},
}


async def one_round(config: dict[str, Any], events: Sequence[BaseEvent]) -> list[float]:
    provider = BenchProvider(events)
    plugins: list[object] = [provider]
    if config.get("sdk"):
        plugins.append(sdk_tracing())
    log = logging.getLogger("masquerade")
    log.setLevel(logging.INFO if config.get("info") else logging.NOTSET)
    host = Host(
        plugins=plugins,
        load_entrypoints=False,
        environ={"MASQUERADE_DISABLE_PLUGINS": config["deny"]},
    )
    async with host:
        result = await host.run_session(SessionRequest(provider="bench", name="bench"))
    assert result.outcome == "completed", result.failure
    return provider.timings


async def main(args: argparse.Namespace) -> None:
    logging.getLogger("masquerade").addHandler(logging.NullHandler())
    logging.getLogger("masquerade").propagate = False  # INFO rows: build records, print none
    mixes = {"audio only": audio_only(args.events), "turns": turns(args.events)}
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.repeats):
        for mix, events in mixes.items():
            for name, config in CONFIGS.items():
                # The median batch of a round: a batch preempted by another process is
                # an outlier, not the typical cost.
                ns = statistics.median(await one_round(config, events))
                key = (mix, name)
                best[key] = min(best.get(key, float("inf")), ns)
    print(f"events per round: {args.events}, rounds: {args.repeats}, backend: {args.backend}")
    print("| mix | observers | ns/event | added vs none |")
    print("|---|---|---:|---:|")
    for mix in mixes:
        base = best[(mix, "none")]
        for name in CONFIGS:
            ns = best[(mix, name)]
            added = "-" if name == "none" else f"{ns - base:+.0f}"
            print(f"| {mix} | {name} | {ns:.0f} | {added} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    arguments = parser.parse_args()
    anyio.run(main, arguments, backend=arguments.backend)
