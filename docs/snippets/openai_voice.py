"""OpenAI guide: a Realtime voice session with a backend tool, on the local emulator."""

import anyio

from masquerade import Host, SessionRequest, tool
from masquerade_openai import wait_realtime
from masquerade_openai.emulator import EmulatorScript, OpenAIRealtimeEmulator, Rule


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number.

    Args:
        order_id: The order number the customer reads out, like A1001.
    """
    return {"order_id": order_id, "status": "shipped"}


# The emulated model: when the user mentions an order, it calls lookup_order.
SCRIPT = EmulatorScript(
    rules=[
        Rule(match="order", tool="lookup_order", arguments={"order_id": "A1001"},
             after="Your order A1001 has shipped."),
    ],
    transcripts=["thanks, that is all"],  # what the model "hears" in committed audio
)


async def main() -> list[str]:
    lines: list[str] = []
    audio = bytearray()  # the assistant's voice, 24 kHz PCM16: play it, or save it
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT) as emulator,
        # Only this provider: no installed plugins (the installed `openai` plugin would
        # read OPENAI_API_KEY instead).
        Host(plugins=[emulator.provider(voice="marin")], load_entrypoints=False) as host,
    ):
        request = SessionRequest(
            provider="openai",
            personality="You are a concise concierge for an online shop.",
            tools=[lookup_order],
            options={"turn_detection": None},  # manual turns: commit() ends a user turn
        )
        async with host.session(request) as session:
            rt = await wait_realtime(session)  # the OpenAI-specific handle
            await rt.send_text("Where is my order?")
            async for event in session.events():
                if event.type == "transcript.done":
                    lines.append(f"{event.role}: {event.text}")
                    if event.text.startswith("Your order"):
                        await rt.send_audio(bytes(4800))  # 100 ms of 24 kHz PCM16
                        await rt.commit()
                        await rt.create_response()
                    elif event.role == "assistant" and "thanks" in event.text:
                        session.end("done")
                elif event.type == "audio.delta":
                    audio += event.audio
                elif event.type == "tool.result":
                    lines.append(f"tool {event.name} -> {event.output}")
    lines.append(f"{session.result.outcome}, {len(session.result.transcript)} turns, "
                 f"{len(audio) // 48} ms of audio")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    anyio.run(main)
