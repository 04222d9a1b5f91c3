"""A fast loopback replay server for the OpenAI Realtime benchmarks.

    .venv/bin/python benchmarks/_replay.py [--events 3000] [--port 0]

It records, once at start-up, what the OpenAI emulator sends for each benchmark prompt
(``bench audio N``, ``bench text N``, a tool call and its follow-up), then serves those
recordings on ``ws://127.0.0.1:PORT/realtime`` to any number of clients. Every response is
one pre-framed byte string written to the socket in one call: the only per-response work
is giving the ids (items, responses, calls, events) a fresh counter, so replays never
repeat an id and the server's speed is not what a client measures. Run it in its own
process (the benchmarks do), so it works on one core while the client reads on the other.

Protocol (what a client can rely on):

* on connect: ``session.created`` (a fresh session id per connection);
* ``session.update``: the recorded ``session.updated``;
* ``conversation.item.create`` of a user message: remembered as the prompt (no reply, the
  recorded stream already starts with its ``conversation.item.added``);
* ``conversation.item.create`` of a ``function_call_output``: the next ``response.create``
  gets the recorded follow-up;
* ``response.create``: the recorded stream for the prompt, up to ``response.done``;
* prompt ``stream``: a response that never ends; one
  ``response.output_audio_transcript.delta`` every 50 ms (20 events/s) whose ``delta`` is
  the server's ``time.monotonic()`` at sending (system-wide on Linux, so a client on the
  same machine computes the event's latency). Connections are spread over ten 5 ms
  phases so the server never sends in bursts.

It prints ``listening on ws://127.0.0.1:PORT`` once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import struct
import sys
import threading
import time
from typing import Any

TOOL_PROMPT = 'call bench_tool {"x": 1}'
TOOLS = [
    {
        "type": "function",
        "name": "bench_tool",
        "description": "A trivial tool.",
        "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}},
    }
]
MARK = b"@@@@@@@@"  # replaced by an 8-digit counter at every replay (same length)
_ID = re.compile(r'"((?:sess|item|resp|call)_[0-9a-f]{8,}|event_[0-9]+)"')


def frame(text: bytes) -> bytes:
    """An unmasked server text frame (RFC 6455) around ``text``."""
    n = len(text)
    if n < 126:
        return bytes((0x81, n)) + text
    if n < 65536:
        return bytes((0x81, 126)) + struct.pack("!H", n) + text
    return bytes((0x81, 127)) + struct.pack("!Q", n) + text


class Recording:
    def __init__(self) -> None:
        self.slots: dict[str, str] = {}
        self.session_created = b""
        self.session_updated = b""
        self.responses: dict[str, bytes] = {}
        self.follow_up = b""
        self.stream_head = b""
        self.stream_delta = ""

    def template(self, event: dict[str, Any]) -> str:
        """``event`` as JSON with every id replaced by a fixed-width, replayable slot."""
        text = json.dumps(event, separators=(",", ":"))

        def slot(match: re.Match[str]) -> str:
            found = self.slots.get(match.group(1))
            if found is None:
                prefix = match.group(1).split("_", 1)[0]
                found = self.slots[match.group(1)] = (
                    f"{prefix}_{len(self.slots):05d}{MARK.decode()}"
                )
            return f'"{found}"'

        return _ID.sub(slot, text)

    def blob(self, events: list[dict[str, Any]]) -> bytes:
        return b"".join(frame(self.template(e).encode()) for e in events)


async def record(events: int) -> Recording:
    from websockets.asyncio.client import connect

    from masquerade_openai.emulator import OpenAIRealtimeEmulator

    rec = Recording()
    with OpenAIRealtimeEmulator() as emu:
        url = emu.base_url.replace("http", "ws", 1) + "/realtime?model=gpt-realtime"
        async with connect(
            url,
            additional_headers={"Authorization": f"Bearer {emu.api_key}"},
            max_size=None,
            compression=None,
        ) as ws:
            rec.session_created = rec.blob([json.loads(await ws.recv())])
            await ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {
                            "type": "realtime",
                            "output_modalities": ["text"],
                            "tools": TOOLS,
                            "audio": {"input": {"turn_detection": None, "transcription": None}},
                        },
                    }
                )
            )
            rec.session_updated = rec.blob([json.loads(await ws.recv())])
            for prompt in (
                f"bench audio {events}",
                f"bench text {events}",
                "bench audio 1",
                TOOL_PROMPT,
            ):
                await ws.send(
                    json.dumps(
                        {
                            "type": "conversation.item.create",
                            "item": {
                                "type": "message",
                                "role": "user",
                                "content": [{"type": "input_text", "text": prompt}],
                            },
                        }
                    )
                )
                await ws.send('{"type":"response.create"}')
                got: list[dict[str, Any]] = []
                while True:
                    data = json.loads(await ws.recv())
                    got.append(data)
                    if data["type"] == "response.function_call_arguments.done":
                        await ws.send(
                            json.dumps(
                                {
                                    "type": "conversation.item.create",
                                    "item": {
                                        "type": "function_call_output",
                                        "call_id": data["call_id"],
                                        "output": json.dumps({"x": 1, "y": 2}),
                                    },
                                }
                            )
                        )
                    if data["type"] == "response.done":
                        if prompt == TOOL_PROMPT and not rec.responses.get(prompt):
                            rec.responses[prompt] = rec.blob(got)
                            got = []
                            await ws.send('{"type":"response.create"}')
                            continue
                        break
                if prompt == TOOL_PROMPT:
                    rec.follow_up = rec.blob(got)
                elif prompt == "bench audio 1":
                    head = [
                        e
                        for e in got
                        if e["type"]
                        in (
                            "conversation.item.added",
                            "conversation.item.done",
                            "response.created",
                            "response.output_item.added",
                            "response.content_part.added",
                        )
                    ]
                    rec.stream_head = rec.blob(head)
                    delta = next(
                        e for e in got if e["type"] == "response.output_audio_transcript.delta"
                    )
                    delta["delta"] = "@TS@"
                    rec.stream_delta = rec.template(delta)
                else:
                    rec.responses[prompt] = rec.blob(got)
    return rec


class Server:
    def __init__(self, rec: Recording) -> None:
        self.rec = rec
        self.counter = itertools.count(1)
        self.phases: list[list[tuple[asyncio.Transport, str]]] = [[] for _ in range(10)]
        self.next_phase = itertools.cycle(range(10))
        self.streaming = asyncio.Event()

    def fresh(self, blob: bytes) -> bytes:
        return blob.replace(MARK, b"%08d" % next(self.counter))

    async def handler(self, ws: Any) -> None:
        transport = ws.transport
        rec = self.rec
        transport.write(self.fresh(rec.session_created))
        prompt = ""
        follow = False
        stream: tuple[Any, str] | None = None
        try:
            async for message in ws:
                data = json.loads(message)
                kind = data.get("type")
                if kind == "session.update":
                    transport.write(self.fresh(rec.session_updated))
                elif kind == "conversation.item.create":
                    item = data.get("item") or {}
                    if item.get("type") == "function_call_output":
                        follow = True
                    elif item.get("type") == "message":
                        prompt = item["content"][0].get("text", "")
                elif kind == "response.create":
                    if follow:
                        follow = False
                        transport.write(self.fresh(rec.follow_up))
                    elif prompt == "stream" and stream is None:
                        n = b"%08d" % next(self.counter)
                        transport.write(rec.stream_head.replace(MARK, n))
                        stream = (transport, rec.stream_delta.replace(MARK.decode(), n.decode()))
                        self.phases[next(self.next_phase)].append(stream)
                        self.streaming.set()
                    elif prompt in rec.responses:
                        transport.write(self.fresh(rec.responses[prompt]))
        except Exception:
            pass
        finally:
            if stream is not None:
                for phase in self.phases:
                    if stream in phase:
                        phase.remove(stream)
                if not any(self.phases):
                    self.streaming = asyncio.Event()

    async def ticker(self) -> None:
        """Every 5 ms, one of ten phases: 20 events/s per streaming connection."""
        loop = asyncio.get_running_loop()
        tick = loop.time()
        for phase in itertools.cycle(self.phases):
            if not any(self.phases):  # nothing streams: sleep until something does
                await self.streaming.wait()
                tick = loop.time()
            tick += 0.005
            await asyncio.sleep(max(0.0, tick - loop.time()))
            for transport, template in phase:
                if not transport.is_closing():
                    text = template.replace("@TS@", f"{time.monotonic():.6f}")
                    transport.write(frame(text.encode()))


async def serve(events: int, port: int) -> None:
    from websockets.asyncio.server import serve as ws_serve

    rec = await record(events)
    server = Server(rec)
    async with ws_serve(
        server.handler,
        "127.0.0.1",
        port,
        ping_interval=None,
        compression=None,
        max_size=None,
        backlog=4096,
    ) as ws_server:
        sock = next(iter(ws_server.sockets))
        print(f"listening on ws://127.0.0.1:{sock.getsockname()[1]}", flush=True)
        await server.ticker()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    # Exit with the process that started us (it holds our stdin open), however it ends.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    try:
        asyncio.run(serve(args.events, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


def start(events: int = 3000) -> tuple[Any, str]:
    """Start the replay server in its own process; return ``(process, base_url)``.

    ``base_url`` is ``http://127.0.0.1:PORT``: the OpenAI provider's and the SDK's
    ``base_url`` (their websocket path is ``/realtime``); raw clients use
    ``ws://127.0.0.1:PORT/realtime``.
    """
    import subprocess
    from pathlib import Path

    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--events", str(events)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise SystemExit(f"the replay server did not start: {line!r}")
    return process, line.rsplit(" ", 1)[1].strip().replace("ws://", "http://")


if __name__ == "__main__":
    main()
