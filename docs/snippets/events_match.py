"""Concepts: the normalized events of a session, matched by class."""

import anyio

from masquerade import Host, SessionRequest, tool
from masquerade.events import (
    AudioDelta,
    ClientEvent,
    EndedEvent,
    ReadyEvent,
    ToolCall,
    ToolResult,
    TranscriptDone,
)
from masquerade.testing import ScriptedProvider


@tool
def stock_level(sku: str) -> int:
    """How many items of a product are in stock.

    Args:
        sku: The product's stock-keeping unit.
    """
    return {"ESP-1": 3}.get(sku, 0)


async def main() -> list[str]:
    provider = ScriptedProvider(
        [
            {"say": "Let me check the stock."},
            {"audio": 5, "bytes": 960},  # five chunks of output audio
            {"tool": "stock_level", "args": {"sku": "ESP-1"}},
            {"tool": "stock_level", "args": {"sku": 42}},  # wrong type: answered with an error
            {"client_event": "show_product", "args": {"sku": "ESP-1"}},
            {"event": {"type": "brand.new.event", "detail": 1}},  # unknown: kept, raw
        ]
    )
    lines: list[str] = []
    audio_bytes = 0
    async with Host(plugins=[provider], load_entrypoints=False) as host:
        request = SessionRequest(provider="scripted", tools=[stock_level])
        async with host.session(request) as session:
            async for event in session.events():
                match event:
                    case ReadyEvent(credentials=credentials):
                        lines.append(f"ready ({credentials.kind})")
                    case TranscriptDone(role=role, text=text):
                        lines.append(f"{role}: {text}")
                    case AudioDelta():
                        audio_bytes += len(event.audio)  # decoded from base64 on access
                    case ToolCall(name=name, arguments=arguments):
                        lines.append(f"call {name}({arguments})")
                    case ToolResult(error=None, output=output):
                        lines.append(f"  -> {output}")
                    case ToolResult(error=error, error_type=error_type):
                        lines.append(f"  -> {error_type}: {error}")
                    case ClientEvent(name=name, args=args):
                        lines.append(f"client event {name} {args}")
                    case EndedEvent(outcome=outcome):
                        lines.append(f"ended: {outcome}")
                    case _ if event.type == "provider":
                        lines.append(f"provider event {event.name}")
    lines.append(f"audio: {audio_bytes} bytes")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    anyio.run(main)
