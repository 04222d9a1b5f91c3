"""SIP guide: answer phone calls with an OpenAI Realtime agent and backend tools.

OpenAI sends a signed ``realtime.call.incoming`` webhook for each call to your SIP
number. The endpoint verifies it, accepts the call, and attaches a masquerade session to
it (``options={"call_id": ...}``), which runs until the caller or the agent hangs up.

Production wiring::

    app = build_app(RealtimeCalls(), Host(), os.environ["OPENAI_WEBHOOK_SECRET"])
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from masquerade import Host, SessionRequest, SessionResult, ToolContext, tool
from masquerade_openai import RealtimeCalls, WebhookVerificationError, verify_webhook


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number.

    Args:
        order_id: The order number the caller reads out.
    """
    return {"order_id": order_id, "status": "shipped"}


@tool
async def end_call(ctx: ToolContext) -> str:
    """Hang up once the caller has what they needed."""
    ctx.session.end("agent hung up")  # the cancel path hangs up the SIP call
    return "goodbye"


def build_app(calls: RealtimeCalls, host: Host, webhook_secret: str) -> Starlette:
    results: list[SessionResult] = []
    state: dict[str, Any] = {}

    async def run_call(call_id: str, caller: str) -> None:
        request = SessionRequest(
            provider="openai",
            personality=f"You are the phone concierge. The caller is {caller}.",
            tools=[lookup_order, end_call],
            options={"call_id": call_id},  # attach to the accepted call
            max_duration=600,
        )
        results.append(await host.run_session(request))

    async def incoming_call(request: Request) -> Response:
        body = await request.body()  # the raw bytes: the signature covers them exactly
        try:
            event = verify_webhook(body, request.headers, webhook_secret)
        except WebhookVerificationError:
            return Response(status_code=400)  # not from OpenAI, altered, or a replay
        caller = event.sip_headers.get("From", "an unknown caller")  # untrusted input
        accepted = await calls.accept(
            event.call_id, {"model": "gpt-realtime", "instructions": "Greet the caller."}
        )
        if accepted:  # False: the caller hung up before we answered
            state["calls"].start_soon(run_call, event.call_id, caller)
        return Response(status_code=200)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with host, anyio.create_task_group() as tg:
            state["calls"] = tg
            yield
            tg.cancel_scope.cancel()

    app = Starlette(routes=[Route("/openai/webhook", incoming_call, methods=["POST"])],
                    lifespan=lifespan)
    app.state.results = results
    return app


async def main() -> list[str]:
    """Try it without a phone or a key: the OpenAI emulator places the call."""
    import httpx

    from masquerade_openai.emulator import EmulatorScript, OpenAIRealtimeEmulator, Rule

    script = EmulatorScript(
        rules=[
            Rule(match="order", tool="lookup_order", arguments={"order_id": "A1001"},
                 after="It has shipped."),
        ]
    )
    lines: list[str] = []
    async with OpenAIRealtimeEmulator(script=script) as emulator:
        app = build_app(
            RealtimeCalls(api_key=emulator.api_key, base_url=emulator.base_url),
            Host(plugins=[emulator.provider()], load_entrypoints=False),
            emulator.webhook_secret,
        )
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://app") as client,
        ):
            forged = await client.post("/openai/webhook", content=b'{"type": "x"}')
            lines.append(f"unsigned webhook: HTTP {forged.status_code}")

            call_id = emulator.new_call({"From": "sip:+15550100@example.com"})
            body, headers = emulator.webhook_request(call_id)  # what OpenAI would POST
            answer = await client.post("/openai/webhook", content=body, headers=headers)
            lines.append(f"signed webhook: HTTP {answer.status_code}")

            # The caller speaks once the agent is on the line with its tools declared.
            await emulator.wait_for(lambda: bool(emulator.calls[call_id].sessions)
                                    and bool(emulator.connection().session.get("tools")))
            emulator.speak("where is my order")
            await emulator.wait_for(lambda: len(emulator.calls[call_id].sessions[0].items) > 3)
            emulator.caller_hangs_up(call_id)  # the session ends through its cancel path
            await emulator.wait_for(lambda: bool(app.state.results))
    result = app.state.results[0]
    call = emulator.calls[call_id]
    lines.append(f"call {call.state}, hung up by the {call.hung_up_by}")
    lines.append(f"{result.outcome}; tools: {[c.name for c in result.tool_calls]}")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    anyio.run(main)
