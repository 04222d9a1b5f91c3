"""What the graph engine costs: per step, per fan-out branch, per streamed session event.

    .venv/bin/python benchmarks/bench_graph.py [--backend asyncio|trio] [--repeat 5]

Rows (best of ``--repeat`` runs each, after one warm-up run):

* **step, async node**: a chain of 200 trivial ``async def`` nodes, ``graph.run``; time per
  step (scheduling, the node's private state copy, update merge and validation, events).
* **step, sync node**: the same with plain functions (each runs in a worker thread).
* **fan-out branch**: one node fanning out to 100 concurrent branches that append to a
  reducer field, then a join; time per branch.
* **session event, run / stream**: an AvatarNode over the in-process ScriptedProvider
  playing 20,000 transcript deltas; per event, for ``host.run_session`` alone (the
  baseline), ``graph.run`` and ``graph.stream`` (every event wrapped in a NodeEvent and
  read by the consumer). The difference is what the graph adds per session event.
* **peak memory, stream**: tracemalloc peak while streaming those 20,000 events.
"""

from __future__ import annotations

import argparse
import operator
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
from pydantic import BaseModel, Field

from masquerade import START, AvatarNode, Graph, Host, SessionRequest, SessionResult
from masquerade.testing import ScriptedProvider

CHAIN = 200
BRANCHES = 100
EVENTS = 20_000


class Chain(BaseModel):
    count: int = 0


class Fan(BaseModel):
    items: Annotated[list[int], operator.add] = Field(default_factory=list)


class Call(BaseModel):
    call: SessionResult | None = None


def chain_graph(sync: bool) -> Graph[Chain]:
    graph = Graph(Chain)
    for i in range(CHAIN):
        if sync:

            def node(state: Chain) -> dict[str, int]:
                return {"count": state.count + 1}

        else:

            async def node(state: Chain) -> dict[str, int]:  # type: ignore[misc]
                return {"count": state.count + 1}

        graph.add_node(f"n{i}", node)
        graph.add_edge(START if i == 0 else f"n{i - 1}", f"n{i}")
    return graph


def fan_graph() -> Graph[Fan]:
    graph = Graph(Fan)

    async def split(state: Fan) -> None:
        return None

    async def join(state: Fan) -> None:
        return None

    graph.add_node("split", split).add_node("join", join).add_edge(START, "split")
    for i in range(BRANCHES):

        async def branch(state: Fan, i: int = i) -> dict[str, list[int]]:
            return {"items": [i]}

        graph.add_node(f"b{i}", branch).add_edge("split", f"b{i}")
    graph.add_edge([f"b{i}" for i in range(BRANCHES)], "join")
    return graph


async def best(repeat: int, run: Callable[[], Awaitable[Any]]) -> float:
    await run()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        times.append(time.perf_counter() - started)
    return min(times)


async def main(repeat: int) -> None:
    provider = ScriptedProvider([{"say": "x" * EVENTS, "chunks": EVENTS}])
    async with Host(
        plugins=[provider],
        load_entrypoints=False,
        environ={
            "MASQUERADE_DISABLE_PLUGINS": "logging,tracing",
        },
    ) as host:
        rows: list[tuple[str, float, str]] = []

        sync_chain, async_chain = chain_graph(sync=True), chain_graph(sync=False)
        t = await best(repeat, lambda: async_chain.run(host=host))
        rows.append(("step, async node (graph.run)", t / CHAIN * 1e6, "µs/step"))
        t = await best(repeat, lambda: sync_chain.run(host=host))
        rows.append(("step, sync node (graph.run)", t / CHAIN * 1e6, "µs/step"))

        fan = fan_graph()
        t = await best(repeat, lambda: fan.run(host=host))
        rows.append(("fan-out branch (100 concurrent)", t / BRANCHES * 1e6, "µs/branch"))

        request = SessionRequest(provider="scripted")
        t = await best(repeat, lambda: host.run_session(request))
        base = t / EVENTS * 1e6
        rows.append(("session event, host.run_session (baseline)", base, "µs/event"))

        graph = Graph(Call).add_node("call", AvatarNode("scripted", output_key="call"))
        graph.add_edge(START, "call")
        t = await best(repeat, lambda: graph.run(host=host))
        rows.append(("session event, graph.run", t / EVENTS * 1e6, "µs/event"))

        async def stream() -> int:
            seen = 0
            async with graph.stream(host=host) as events:
                async for _ in events:
                    seen += 1
            return seen

        t = await best(repeat, stream)
        rows.append(("session event, graph.stream (read)", t / EVENTS * 1e6, "µs/event"))

        tracemalloc.start()
        await stream()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append(("peak memory, graph.stream of 20k events", peak / 2**20, "MiB"))

    width = max(len(r[0]) for r in rows)
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:9.2f} {unit}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    anyio.run(main, args.repeat, backend=args.backend)
