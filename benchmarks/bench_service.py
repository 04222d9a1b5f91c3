"""The call service (``masquerade serve``): POST /v1/runs per second, time to credentials.

    .venv/bin/python benchmarks/bench_service.py [--posts 500] [--concurrency 20]
                                                [--submissions 100]

1. **POST /v1/runs per second**: ``--posts`` requests over real HTTP on loopback (httpx,
   ``--concurrency`` at once) to a service that only queues runs (``--no-worker``), on
   SQLite (the embedded default's database) and on PostgreSQL (a throwaway local cluster).
2. **Time to credentials**: ``--submissions`` frontends at once each POST a run and
   long-poll ``GET /v1/runs/{id}/credentials?wait=60`` with the run's client token; the
   time from the POST to the credentials in hand, p50/p99. Embedded (SQLite and a worker
   in the service's process) against PostgreSQL (the same process, worker on PostgreSQL),
   both with capacity for every run at once; the Runway emulator runs in-process.

Everything runs in one process on one event loop (service, worker, clients), so the
figures are those of a single ``masquerade serve`` process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).parent))

from _stats import percentile
from durable_graph import graph

from masquerade import Host, Poller
from masquerade_dbos import DurableGraph
from masquerade_dbos.service import ServiceConfig, create_app
from masquerade_dbos.testing import postgres_cluster
from masquerade_runway.emulator import RunwayEmulator

HERE = Path(__file__).parent
# The avatar greets, waits a little and hangs up: runs end on their own.
SCRIPT = [{"say": "Hello."}, {"wait": 15.0}, {"hangup": True}]


@asynccontextmanager
async def service(durable: DurableGraph[Any]) -> AsyncIterator[str]:
    app = create_app(durable, ServiceConfig(events_poll_interval=0.05))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=75
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


async def posts(url: str, count: int, concurrency: int) -> float:
    durable = DurableGraph(graph, database_url=url, worker=False)
    client = httpx.AsyncClient(timeout=60)
    async with durable, service(durable) as base, client:
        client.base_url = httpx.URL(base)
        for i in range(20):  # warm up
            (await client.post("/v1/runs", json={"state": {"name": f"w{i}"}})).raise_for_status()
        limit = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with limit:
                answer = await client.post("/v1/runs", json={"state": {"name": f"p{i}"}})
                assert answer.status_code == 202, answer.text

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - started)


async def to_credentials(url: str, count: int) -> tuple[list[float], dict[str, int]]:
    with RunwayEmulator(script=SCRIPT, plan={"provisioning": 0.05}) as emulator:
        host = Host(
            plugins=[emulator.provider()],
            load_entrypoints=False,
            poller=Poller(initial_interval=0.02, max_interval=0.1),
        )
        durable = DurableGraph(
            graph, database_url=url, host=host, capacity=count + 1, polling_interval=0.05
        )
        limits = httpx.Limits(max_connections=2 * count + 10)
        async with (
            durable,
            service(durable) as base,
            httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client,
        ):

            failures: dict[str, int] = {}

            async def one(i: int) -> float | None:
                started = time.perf_counter()
                run = (await client.post("/v1/runs", json={"state": {"name": f"c{i}"}})).json()
                answer = await client.get(
                    f"/v1/runs/{run['id']}/credentials",
                    params={"wait": 60},
                    headers={"Authorization": f"Bearer {run['client_token']}"},
                )
                if answer.status_code != 200:
                    code = answer.json()["error"]["code"]
                    failures[code] = failures.get(code, 0) + 1
                    return None
                return time.perf_counter() - started

            await one(-1)  # warm up
            times = await asyncio.gather(*(one(i) for i in range(count)))
            # Let the calls end before the next configuration starts.
            await asyncio.sleep(18)
            return [t for t in times if t is not None], failures


def _ms(values: list[float]) -> str:
    return f"{percentile(values, 0.5) * 1000:.0f} / {percentile(values, 0.99) * 1000:.0f}"


def _postgres(server: str, name: str) -> str:
    """A fresh database in the cluster: runs queued by one table never reach the next."""
    import sqlalchemy as sa

    admin = sa.create_engine(
        server.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def _sqlite(name: str) -> str:
    path = HERE / "results" / f".bench_service_{name}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with postgres_cluster() as pg:
        print(f"\n## POST /v1/runs, {args.posts} requests, {args.concurrency} at once\n")
        print("| database | requests/s | ratio |\n|---|---:|---:|")
        sqlite_rate = await posts(_sqlite("posts"), args.posts, args.concurrency)
        pg_rate = await posts(_postgres(pg, "posts"), args.posts, args.concurrency)
        print(f"| SQLite (embedded) | {sqlite_rate:.0f} | 1.0x |")
        print(f"| PostgreSQL 15 | {pg_rate:.0f} | {pg_rate / sqlite_rate:.2f}x |")

        print(f"\n## POST -> credentials, {args.submissions} frontends at once (ms)\n")
        print("| mode | p50 / p99 | p50 ratio | answered |\n|---|---:|---:|---:|")
        embedded, e_fail = await to_credentials(_sqlite("credentials"), args.submissions)
        postgres, p_fail = await to_credentials(_postgres(pg, "credentials"), args.submissions)
        print(
            f"| embedded (SQLite + in-process worker) | {_ms(embedded)} | 1.0x | "
            f"{len(embedded)}/{args.submissions} {e_fail or ''} |"
        )
        ratio = percentile(postgres, 0.5) / percentile(embedded, 0.5)
        print(
            f"| PostgreSQL (in-process worker) | {_ms(postgres)} | {ratio:.2f}x | "
            f"{len(postgres)}/{args.submissions} {p_fail or ''} |"
        )
    _sqlite("posts")
    _sqlite("credentials")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--submissions", type=int, default=100)
    asyncio.run(main(parser.parse_args()))
