"""Serving the call service in the test process: uvicorn on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from masquerade_dbos import DurableGraph
from masquerade_dbos.service import ServiceConfig, create_app


@asynccontextmanager
async def serving(
    durable: DurableGraph[Any], config: ServiceConfig | None = None, **options: Any
) -> AsyncIterator[str]:
    """Serve ``durable`` (already running) on 127.0.0.1:<free port>; yield the base URL."""
    import uvicorn

    app = create_app(durable, config, **options)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True  # open event streams must not hold the shutdown
        await asyncio.wait_for(task, 30)
        sock.close()


async def read_events(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    until: str | None = None,
    limit: int = 10_000,
) -> list[tuple[str | None, str, Any]]:
    """Read an SSE stream: ``(id, event name, data)`` until ``until`` (an event ``type``
    in the data, or the ``end`` event) or the stream closes."""
    out: list[tuple[str | None, str, Any]] = []
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id: str | None = None
        name = "message"
        data: list[str] = []
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                parsed = json.loads("\n".join(data))
                out.append((event_id, name, parsed))
                data, name = [], "message"
                if name == "end" or out[-1][1] == "end":
                    break
                if until is not None and parsed.get("type") == until:
                    break
                if len(out) >= limit:
                    break
    return out
