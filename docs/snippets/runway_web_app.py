"""Runway guide: a web backend that starts avatar calls for a browser and runs the tools.

POST /calls starts a call (a one-node graph) in the background and answers with the
LiveKit credentials the browser joins with, as soon as the session is ready; the call goes
on after the response, and GET /calls/{id} reports its result when it has ended.

Run it with a Runway key:  RUNWAYML_API_SECRET=key_... uvicorn runway_web_app:app
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from masquerade import END, START, AvatarNode, Graph, Host, JoinCredentials, SessionResult, tool

ORDERS = {"A1001": {"status": "shipped", "eta": "tomorrow"}}


@tool
async def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order by its number.

    Args:
        order_id: The order number the customer reads out, like A1001.
    """
    order = ORDERS.get(order_id.strip().upper())
    if order is None:
        raise LookupError(f"there is no order {order_id}")
    return {"order_id": order_id, **order}


@tool(kind="client_event")
def show_order(order_id: str) -> None:
    """Show the order's page on the customer's screen.

    Args:
        order_id: The order to show.
    """


class Call(BaseModel):
    customer: str
    result: SessionResult | None = None


def build_app(host: Host | None = None) -> Starlette:
    host = host or Host()  # the installed runway plugin reads RUNWAYML_API_SECRET
    calls: dict[str, Call] = {}
    state: dict[str, Any] = {}

    async def start_call(request: Request) -> JSONResponse:
        body = await request.json()
        call_id = uuid.uuid4().hex
        ready = anyio.Event()
        credentials: list[JoinCredentials] = []

        def on_ready(joined: JoinCredentials) -> None:
            credentials.append(joined)
            ready.set()

        graph = Graph(Call)
        graph.add_node(
            "avatar",
            AvatarNode(
                "runway",
                avatar="cooking-teacher",
                tools=[lookup_order, show_order],
                personality=lambda call: f"You help {call.customer} with their orders.",
                options={"consume": True},  # hand the browser LiveKit credentials
                on_ready=on_ready,
                output_key="result",
                max_duration=300,
            ),
        )
        graph.add_edge(START, "avatar")
        graph.add_edge("avatar", END)

        async def run() -> None:
            try:
                calls[call_id] = await graph.run(Call(customer=body["customer"]), host=host)
            finally:
                ready.set()  # a call that failed before it was ready answers too

        state["calls"].start_soon(run)
        with anyio.move_on_after(120):
            await ready.wait()
        if not credentials:
            return JSONResponse({"error": "the avatar could not be started"}, status_code=503)
        return JSONResponse({"call_id": call_id, **credentials[0].reveal()})

    async def call_result(request: Request) -> JSONResponse:
        call = calls.get(request.path_params["call_id"])
        if call is None or call.result is None:
            return JSONResponse({"status": "running"})
        result = call.result
        return JSONResponse(
            {"status": result.outcome, "transcript": result.text,
             "tools": [c.name for c in result.tool_calls]}
        )

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(Path(__file__).with_name("runway_web_page.html").read_text())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One host for the whole app (one poller for every call); calls run in this task
        # group, so shutting the app down ends them through their cancel path.
        async with host, anyio.create_task_group() as tg:
            state["calls"] = tg
            yield
            tg.cancel_scope.cancel()

    return Starlette(
        routes=[
            Route("/", page),
            Route("/calls", start_call, methods=["POST"]),
            Route("/calls/{call_id}", call_result),
        ],
        lifespan=lifespan,
    )


#: What `uvicorn runway_web_app:app` serves (sessions on the installed runway plugin).
app = build_app()


async def main() -> dict[str, Any]:
    """Try it without a key: the app against the Runway emulator, driven by an HTTP client."""
    import httpx

    from masquerade_runway.emulator import RunwayEmulator

    script = [
        {"tool": "lookup_order", "args": {"order_id": "A1001"}},
        {"client_event": "show_order", "args": {"order_id": "A1001"}},
        {"say": "Your order ships tomorrow."},
        {"hangup": True},
    ]
    async with RunwayEmulator(script=script) as emulator:
        app = build_app(Host(plugins=[emulator.provider()]))
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://app") as client,
        ):
            joined = (await client.post("/calls", json={"customer": "Ada"})).json()
            print("browser joins with:", sorted(joined))
            status: dict[str, Any] = {"status": "running"}
            while status["status"] == "running":
                await anyio.sleep(0.05)
                status = (await client.get(f"/calls/{joined['call_id']}")).json()
    print(status)
    return status


if __name__ == "__main__":
    anyio.run(main)
