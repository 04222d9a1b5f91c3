"""The embedded mode as a user runs it: one process submits and runs (SQLite).

``python embedded_app.py DATABASE_URL RUNS``: submits RUNS runs with fixed idempotency
keys, prints ``done <run id> <log>`` for each. Started again after a crash, the same keys
name the same runs, which DBOS recovers when the process starts.
"""

from __future__ import annotations

import sys

import anyio

from masquerade_dbos import DurableGraph

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from avatar_graph import Call, graph


async def main(url: str, count: int) -> None:
    async with DurableGraph(graph, database_url=url, polling_interval=0.05) as durable:
        runs = [
            await durable.submit(Call(name=f"r{i}"), idempotency_key=f"order-{i}")
            for i in range(count)
        ]
        print("submitted", flush=True)
        for run in runs:
            final = await run.result()
            failure = final.call.failure if final.call else None
            print("done", run.id, ",".join(final.log), failure, file=sys.stderr, flush=True)
            print("done", run.id, ",".join(final.log), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[2]), backend="asyncio")
