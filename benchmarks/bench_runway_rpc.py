"""A ``backend_rpc`` round trip on the emulator room, against a bare websocket echo.

    .venv/bin/python benchmarks/bench_runway_rpc.py [--calls 500] [--backend asyncio]

Three measurements with the same payload (``{"args": {...}}``, about 300 bytes):

* **bare echo**: a websocket client (masquerade_runway's anyio websocket) sends the payload
  to a websocket echo endpoint on the same server stack as the emulator (uvicorn +
  starlette) and waits for it to come back;
* **room RPC**: the emulator's scripted worker calls an RPC method of a backend that
  joined with :class:`~masquerade_runway.EmulatorRoom` and answers with a plain handler
  (the RPC envelope, dispatch and reply, no masquerade session);
* **session tool**: the same call answered by a masquerade session: the provider's RPC
  endpoint, ``session.call_tool`` through the ``masquerade_tool_invoke`` hook chain
  (argument validation, the tool, ``tool.call`` / ``tool.result`` events).

Room RPC and session-tool durations are measured by the emulator's worker (from sending
the request to receiving the reply), the echo by the client; all three cross one thread
boundary and one loopback TCP connection each way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket as StarletteWebSocket

from masquerade import Host, Poller, SessionRequest, tool
from masquerade_runway import EmulatorRoom, RpcInvocation, RunwayClient
from masquerade_runway._ws import WebSocket
from masquerade_runway.emulator import RunwayEmulator

ARGS = {"order_id": "A1001", "note": "x" * 240}
PAYLOAD = json.dumps({"args": ARGS})


@tool
async def echo(order_id: str, note: str) -> dict[str, Any]:
    """Echo the order back.

    Args:
        order_id: The order.
        note: A note.
    """
    return {"order_id": order_id, "note": note}


def summary(name: str, samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[int(len(ordered) * 0.95)]
    return (
        f"{name:<14} n={len(ordered):<5} mean={statistics.mean(ordered):.3f} ms  "
        f"p50={p50:.3f} ms  p95={p95:.3f} ms"
    )


class EchoServer:
    """A bare websocket echo on uvicorn + starlette, on its own thread and loop."""

    def __init__(self) -> None:
        async def echo_endpoint(websocket: StarletteWebSocket) -> None:
            await websocket.accept()
            try:
                while True:
                    await websocket.send_text(await websocket.receive_text())
            except Exception:
                return

        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            Starlette(routes=[WebSocketRoute("/echo", echo_endpoint)]),
            log_config=None,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True
        )

    def __enter__(self) -> EchoServer:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)


async def bare_echo(calls: int) -> list[float]:
    samples = []
    with EchoServer() as server:
        ws = await WebSocket.connect(f"ws://127.0.0.1:{server.port}/echo")
        for _ in range(20):
            await ws.send(PAYLOAD)
            await ws.recv()
        for _ in range(calls):
            started = time.perf_counter()
            await ws.send(PAYLOAD)
            await ws.recv()
            samples.append((time.perf_counter() - started) * 1000)
        await ws.close()
    return samples


def worker_durations(transcript: list[Any]) -> list[float]:
    durations = []
    for turn in transcript:
        results = turn.tool_results if hasattr(turn, "tool_results") else turn["toolResults"]
        for result in results or ():
            assert not result.get("error"), result
            durations.append(float(result["durationMs"]))
    return durations[20:]  # the first calls warm up


async def room_rpc(emulator: RunwayEmulator, calls: int) -> list[float]:
    emulator.plan_next(
        script=[{"tool": "echo", "args": ARGS} for _ in range(calls + 20)] + [{"hangup": True}],
        start_on="backend",
    )
    async with RunwayClient(emulator.api_key, base_url=emulator.base_url) as client:
        session_id = await client.create_realtime_session(
            {
                "model": "gwm1_avatars",
                "avatar": {"type": "runway-preset", "presetId": "influencer"},
                "tools": [{"type": "backend_rpc", "name": "echo", "description": "Echo."}],
            }
        )
        while (await client.retrieve_realtime_session(session_id)).status != "READY":  # noqa: ASYNC110
            await anyio.sleep(0.01)
        credentials = await client.connect_backend(session_id)

        async def handler(invocation: RpcInvocation) -> str:
            return json.dumps(json.loads(invocation.payload)["args"])

        room = EmulatorRoom()
        room.register_rpc_method("echo", handler)
        await room.connect(credentials.url, credentials.token.get_secret_value())
        await room.wait_closed()
        await room.disconnect()
        conversation = await client.retrieve_avatar_conversation(session_id)
        while conversation.status == "in_progress":
            await anyio.sleep(0.05)
            conversation = await client.retrieve_avatar_conversation(session_id)
    return worker_durations(conversation.transcript)


async def session_tool(emulator: RunwayEmulator, calls: int) -> list[float]:
    emulator.plan_next(
        script=[{"tool": "echo", "args": ARGS} for _ in range(calls + 20)] + [{"hangup": True}]
    )
    provider = emulator.provider()
    poller = Poller(initial_interval=0.01, max_interval=0.05)
    async with Host(plugins=[provider], load_entrypoints=False, poller=poller) as host:
        result = await host.run_session(
            SessionRequest(provider="runway", avatar="influencer", tools=[echo])
        )
    assert result.outcome == "completed", result.failure
    return worker_durations(result.transcript)


async def main(calls: int) -> None:
    print(f"payload: {len(PAYLOAD)} bytes, {calls} calls each\n")
    echo_ms = await bare_echo(calls)
    async with RunwayEmulator(plan={"provisioning": 0.01}) as emulator:
        rpc_ms = await room_rpc(emulator, calls)
        tool_ms = await session_tool(emulator, calls)
    print(summary("bare echo", echo_ms))
    print(summary("room RPC", rpc_ms))
    print(summary("session tool", tool_ms))
    base = statistics.median(echo_ms)
    print(
        f"\noverhead over the bare echo (p50): room RPC +{statistics.median(rpc_ms) - base:.3f} ms,"
        f" session tool +{statistics.median(tool_ms) - base:.3f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    anyio.run(main, args.calls, backend=args.backend)
