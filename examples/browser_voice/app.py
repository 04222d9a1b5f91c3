"""A browser talks to an OpenAI Realtime agent over WebRTC; its tools run in this backend.

    python examples/browser_voice/app.py          # then open http://127.0.0.1:8000
    python examples/browser_voice/app.py --check  # one call through the routes, no browser

Without ``OPENAI_API_KEY`` it runs against the loopback emulator (which answers the
WebRTC offer but carries no media: type instead of speaking, and read the transcript).

The sequence (see the OpenAI guide, "Browser frontends"):

1. the page asks for a session: ``POST /api/sessions`` starts a masquerade session with
   ``options={"transport": "webrtc"}`` and the backend's tools;
2. the page posts its SDP offer to ``POST /api/sessions/{id}/sdp``; the backend creates
   the call with the session configuration (``rt.answer_offer``), attaches the sideband
   websocket by call id, and returns the SDP answer;
3. the page follows the call on ``GET /api/sessions/{id}/events`` (server-sent events):
   transcripts, tool calls and their results, all seen by the backend on the sideband;
4. ``DELETE /api/sessions/{id}`` ends the session: the cancel path hangs up the call.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import masquerade_openai
from masquerade import Host, Session, SessionRequest, tool

HERE = Path(__file__).resolve().parent


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number.

    Args:
        order_id: The order number the customer gives.
    """
    return {"order_id": order_id, "status": "shipped", "eta": "tomorrow"}


def session_request() -> SessionRequest:
    return SessionRequest(
        provider="openai",
        personality="You are the order desk. Be brief.",
        tools=[lookup_order],
        options={"transport": "webrtc"},
        provisioning_timeout=120,
    )


#: What the page shows of each session event (the rest stays in the backend).
def page_event(event: Any) -> dict[str, Any] | None:
    if event.type == "transcript.done":
        return {"kind": "transcript", "role": event.role, "text": event.text}
    if event.type == "tool.call":
        return {"kind": "tool", "name": event.name, "arguments": event.arguments}
    if event.type == "tool.result":
        return {"kind": "tool_result", "output": event.output_text()}
    if event.type in ("ready", "ended"):
        return {"kind": event.type}
    return None


def build_app(host: Host) -> Starlette:
    sessions: dict[str, Session] = {}
    group: dict[str, TaskGroup] = {}

    async def run(run_id: str, ready: anyio.Event) -> None:
        async with host.session(session_request()) as session:
            sessions[run_id] = session
            ready.set()
            await session.wait()
        sessions.pop(run_id, None)

    async def start(request: Request) -> Response:
        run_id = uuid.uuid4().hex[:12]
        ready = anyio.Event()
        group["tg"].start_soon(run, run_id, ready)
        with anyio.fail_after(10):
            await ready.wait()
            await masquerade_openai.wait_realtime(sessions[run_id])
        return JSONResponse({"id": run_id})

    def find(request: Request) -> Session:
        found = sessions.get(request.path_params["run_id"])
        if found is None:
            raise LookupError(request.path_params["run_id"])
        return found

    async def sdp(request: Request) -> Response:
        try:
            session = find(request)
        except LookupError:
            return JSONResponse({"error": "no such session"}, status_code=404)
        offer = (await request.body()).decode("utf-8", "replace")
        rt = masquerade_openai.realtime(session)
        answer = await rt.answer_offer(offer)
        return Response(answer, media_type="application/sdp")

    async def text(request: Request) -> Response:
        try:
            session = find(request)
        except LookupError:
            return JSONResponse({"error": "no such session"}, status_code=404)
        body = await request.json()
        await masquerade_openai.realtime(session).send_text(str(body.get("text", "")))
        return JSONResponse({"sent": True})

    async def events(request: Request) -> Response:
        try:
            session = find(request)
        except LookupError:
            return JSONResponse({"error": "no such session"}, status_code=404)

        async def stream() -> AsyncIterator[str]:
            async with session.events() as subscription:
                async for event in subscription:
                    shown = page_event(event)
                    if shown is not None:
                        yield f"data: {json.dumps(shown)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def stop(request: Request) -> Response:
        session = sessions.get(request.path_params["run_id"])
        if session is not None:
            session.end("the user left")
        return JSONResponse({"ended": session is not None})

    async def page(request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        if name not in ("index.html", "app.js", "style.css"):
            return Response(status_code=404)
        return FileResponse(HERE / name)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with host, anyio.create_task_group() as tg:
            group["tg"] = tg
            yield
            for session in list(sessions.values()):
                session.end("the server stopped")

    return Starlette(
        routes=[
            Route("/", page),
            Route("/{name}", page),
            Route("/api/sessions", start, methods=["POST"]),
            Route("/api/sessions/{run_id}/sdp", sdp, methods=["POST"]),
            Route("/api/sessions/{run_id}/text", text, methods=["POST"]),
            Route("/api/sessions/{run_id}/events", events),
            Route("/api/sessions/{run_id}", stop, methods=["DELETE"]),
        ],
        lifespan=lifespan,
    )


async def check(host: Host) -> None:  # runs on asyncio (uvicorn)
    """What the page does, through the same routes, without a browser: start a session,
    post an offer (a browser's, recorded), type a message, read the events until the
    model answered."""
    import socket

    import httpx
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(build_app(host), log_level="warning"))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await anyio.sleep(0.01)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await _one_call(client)
        server.should_exit = True


async def _one_call(client: Any) -> None:
    from masquerade_openai.emulator import SAMPLE_OFFER

    run_id = (await client.post("/api/sessions")).json()["id"]
    answer = await client.post(f"/api/sessions/{run_id}/sdp", content=SAMPLE_OFFER,
                               headers={"Content-Type": "application/sdp"})
    print(f"SDP answer: {answer.text.splitlines()[0]} ({answer.status_code})")
    async with client.stream("GET", f"/api/sessions/{run_id}/events") as events:
        await client.post(f"/api/sessions/{run_id}/text",
                          json={"text": 'call lookup_order {"order_id": "A1001"}'})
        async for line in events.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[len("data: "):])
            print(event)
            if event["kind"] == "transcript" and event["role"] == "assistant":
                break
    await client.delete(f"/api/sessions/{run_id}")


def main(argv: list[str]) -> None:
    import uvicorn

    if os.environ.get("OPENAI_API_KEY"):
        if "--check" in argv:
            anyio.run(check, Host(), backend="asyncio")
        else:
            uvicorn.run(build_app(Host()), host="127.0.0.1", port=8000)
        return
    from masquerade_openai.emulator import OpenAIRealtimeEmulator

    with OpenAIRealtimeEmulator() as emulator:
        print(f"no OPENAI_API_KEY: using the emulator at {emulator.base_url}")
        host = Host(plugins=[emulator.provider()], load_entrypoints=False)
        if "--check" in argv:
            anyio.run(check, host, backend="asyncio")
        else:
            uvicorn.run(build_app(host), host="127.0.0.1", port=8000)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
