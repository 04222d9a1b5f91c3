"""OpenAI guide: a browser frontend's WebRTC call, answered and followed by the backend."""

import anyio

from masquerade import Host, SessionRequest, tool
from masquerade_openai import wait_realtime
from masquerade_openai.emulator import SAMPLE_OFFER, OpenAIRealtimeEmulator


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number.

    Args:
        order_id: The order number the customer reads out, like A1001.
    """
    return {"order_id": order_id, "status": "shipped"}


async def main() -> list[str]:
    lines: list[str] = []
    async with (
        OpenAIRealtimeEmulator() as emulator,
        Host(plugins=[emulator.provider()], load_entrypoints=False) as host,
    ):
        request = SessionRequest(
            provider="openai",
            personality="You are the order desk.",
            tools=[lookup_order],  # declared by the backend when it creates the call
            options={"transport": "webrtc"},
        )
        async with host.session(request) as session:
            rt = await wait_realtime(session)  # returns while the session waits for a call
            # SAMPLE_OFFER stands for the offer your page posts (pc.createOffer()).
            answer = await rt.answer_offer(SAMPLE_OFFER)  # your POST /sdp route returns this
            sections = sum(line.startswith("m=") for line in answer.splitlines())
            lines.append(f"answer: {answer.splitlines()[0]}, {sections} media sections")
            lines.append(f"call: {rt.call_id[:4]}... sideband attached")
            # In the browser the user speaks; the backend sees the call on the sideband.
            emulator.speak('call lookup_order {"order_id": "A1001"}')
            async for event in session.events():
                if event.type == "transcript.done":
                    lines.append(f"{event.role}: {event.text}")
                    if event.role == "assistant":
                        session.end("done")  # the cancel path hangs up the call
                elif event.type == "tool.result":
                    lines.append(f"tool {event.name} -> {event.output}")
        call = emulator.calls[rt.call_id]
        lines.append(f"call {call.state}, hung up by the {call.hung_up_by}")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    anyio.run(main)
