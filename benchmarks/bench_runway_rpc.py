"""A ``backend_rpc`` round trip on the emulator room: raw loop, room RPC, session tool.

    .venv/bin/python benchmarks/bench_runway_rpc.py [--calls 200] [--repeats 5] [--backend asyncio]

Three backends answer the same calls (payload ``{"args": {...}}``, about 300 bytes) from
the emulator's scripted avatar worker, and all three are timed the same way: by the
worker, from sending the ``rpc_request`` to receiving the reply (the ``durationMs`` the
emulator records for each tool call). The emulator's own work is therefore in every
figure alike, and the differences are what each backend adds:

* **raw loop**: the backend joins the room with a bare websocket (masquerade_runway's
  anyio websocket) and answers in its receive loop: ``json.loads`` the request, echo the
  arguments, ``json.dumps`` the reply, send;
* **room RPC**: :class:`~masquerade_runway.EmulatorRoom` with a plain handler (the
  room client's dispatch, a task per call, the reply envelope; no masquerade session);
* **session tool**: a masquerade session with the Runway provider: the RPC endpoint,
  ``session.call_tool`` through the ``masquerade_tool_invoke`` hook chain (argument
  validation, the tool, ``tool.call`` / ``tool.result`` events), with the built-in
  logging and tracing observers.

Each repeat runs one session of ``--calls`` calls per backend, the backends in turn, so a
disturbance of the shared machine hits all three alike. Reported: p50, p99 and max over
every call, the p50 difference to the raw loop per repeat (median, min..max), and GC
collections while each backend ran (``gc.callbacks``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stats import GcPauses, median_range, percentile

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


def worker_durations(transcript: list[Any]) -> list[float]:
    durations = []
    for turn in transcript:
        results = turn.tool_results if hasattr(turn, "tool_results") else turn["toolResults"]
        for result in results or ():
            assert not result.get("error"), result
            durations.append(float(result["durationMs"]))
    return durations[20:]  # the first calls warm up


async def open_backend_session(
    emulator: RunwayEmulator, client: RunwayClient, calls: int
) -> tuple[str, Any]:
    """A session scripted to call ``echo`` ``calls`` (+20 warm-up) times once the backend
    joined: its id and the backend's credentials, once READY."""
    emulator.plan_next(
        script=[{"tool": "echo", "args": ARGS} for _ in range(calls + 20)] + [{"hangup": True}],
        start_on="backend",
    )
    session_id = await client.create_realtime_session(
        {
            "model": "gwm1_avatars",
            "avatar": {"type": "runway-preset", "presetId": "influencer"},
            "tools": [{"type": "backend_rpc", "name": "echo", "description": "Echo."}],
        }
    )
    while (await client.retrieve_realtime_session(session_id)).status != "READY":  # noqa: ASYNC110
        await anyio.sleep(0.01)
    return session_id, await client.connect_backend(session_id)


async def transcript_durations(client: RunwayClient, session_id: str) -> list[float]:
    """The worker durations of the session's transcript, once its conversation ended."""
    conversation = await client.retrieve_avatar_conversation(session_id)
    while conversation.status == "in_progress":
        await anyio.sleep(0.05)
        conversation = await client.retrieve_avatar_conversation(session_id)
    return worker_durations(conversation.transcript)


async def room_rpc(emulator: RunwayEmulator, calls: int) -> list[float]:
    async with RunwayClient(emulator.api_key, base_url=emulator.base_url) as client:
        session_id, credentials = await open_backend_session(emulator, client, calls)

        async def handler(invocation: RpcInvocation) -> str:
            return json.dumps(json.loads(invocation.payload)["args"])

        room = EmulatorRoom()
        room.register_rpc_method("echo", handler)
        await room.connect(credentials.url, credentials.token.get_secret_value())
        await room.wait_closed()
        await room.disconnect()
        return await transcript_durations(client, session_id)


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


async def raw_loop(emulator: RunwayEmulator, calls: int) -> list[float]:
    async with RunwayClient(emulator.api_key, base_url=emulator.base_url) as client:
        session_id, credentials = await open_backend_session(emulator, client, calls)
        ws = await WebSocket.connect(
            credentials.url,
            headers={"Authorization": f"Bearer {credentials.token.get_secret_value()}"},
        )
        json.loads(await ws.recv())  # joined
        await ws.send(json.dumps({"type": "register_rpc", "method": "echo"}))
        loads, dumps = json.loads, json.dumps
        while True:
            try:
                message = loads(await ws.recv())
            except Exception:
                break
            if message["type"] == "rpc_request":
                reply = dumps(loads(message["payload"])["args"])
                await ws.send(
                    dumps(
                        {
                            "type": "rpc_response",
                            "requestId": message["requestId"],
                            "payload": reply,
                        }
                    )
                )
        await ws.close()
        return await transcript_durations(client, session_id)


async def main(args: argparse.Namespace) -> None:
    print(
        f"payload: {len(PAYLOAD)} bytes; {args.calls} calls per session, {args.repeats} "
        f"repeats, backends in turn; {args.backend}"
    )
    contenders = {"raw loop": raw_loop, "room RPC": room_rpc, "session tool": session_tool}
    times: dict[str, list[list[float]]] = {name: [] for name in contenders}
    gcp = GcPauses()
    async with RunwayEmulator(plan={"provisioning": 0.01}) as emulator:
        for run in contenders.values():  # warm-up
            await run(emulator, 20)
        for _ in range(args.repeats):
            for name, run in contenders.items():
                gcp.label = name
                times[name].append(await run(emulator, args.calls))
                gcp.label = ""
    gcp.close()
    print("| backend | p50 ms | p99 ms | max ms | p50 - raw p50, per repeat, ms | GC collections |")
    print("|---|---:|---:|---:|---:|---|")
    for name, blocks in times.items():
        flat = [t for block in blocks for t in block]
        diffs = [
            percentile(b, 0.5) - percentile(r, 0.5)
            for b, r in zip(blocks, times["raw loop"], strict=True)
        ]
        print(
            f"| {name} | {percentile(flat, 0.5):.3f} | {percentile(flat, 0.99):.3f} "
            f"| {max(flat):.3f} | {median_range(diffs, '{:+.3f}')} | {gcp.summary(name)} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    anyio.run(main, args, backend=args.backend)
