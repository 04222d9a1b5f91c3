"""The concierge as a LangGraph ``StateGraph``: AvatarNode is a plain async node there.

    START ─▶ concierge (AvatarNode) ─▶ ticket ─▶ END

Run it (offline against the Runway emulator when RUNWAYML_API_SECRET is not set)::

    python examples/langgraph_concierge.py

Session events (transcript, tool calls) arrive through LangGraph's ``custom`` stream
mode, each wrapped in a :class:`masquerade.NodeEvent` that names the node.
"""

from __future__ import annotations

import os
import sys
from contextlib import AsyncExitStack
from typing import Any, TypedDict

import anyio
from langgraph.graph import END, START, StateGraph

from masquerade import AvatarNode, Host, NodeEvent, SessionResult
from masquerade.cli._concierge import SCRIPT, book_slot, lookup_order


class State(TypedDict, total=False):
    customer: str
    call: SessionResult
    ticket: str


def ticket(state: State) -> dict[str, str]:
    call = state["call"]
    booked = [str(c.output) for c in call.tool_calls if c.name == "book_slot" and not c.error]
    return {"ticket": f"{state['customer']}: {call.outcome}; {', '.join(booked) or 'no booking'}"}


def build_graph(host: Host | None = None) -> Any:
    """The compiled LangGraph graph; ``host`` runs the sessions (default: a fresh Host)."""
    concierge = AvatarNode(
        "runway",
        avatar="human-resource",
        tools=[lookup_order, book_slot],
        personality=lambda state: f"You are a concierge helping {state['customer']}.",
        output_key="call",
        host=host,
    )
    builder = StateGraph(State)
    builder.add_node("concierge", concierge)
    builder.add_node("ticket", ticket)
    builder.add_edge(START, "concierge")
    builder.add_edge("concierge", "ticket")
    builder.add_edge("ticket", END)
    return builder.compile()


async def main(customer: str = "Ada Lovelace", *, quiet: bool = False) -> State:
    say = (lambda *_: None) if quiet else print
    async with AsyncExitStack() as stack:
        plugins = []
        if not os.environ.get("RUNWAYML_API_SECRET"):
            from masquerade_runway.emulator import RunwayEmulator

            emulator = RunwayEmulator(script=[*SCRIPT, {"hangup": True}])
            await stack.enter_async_context(emulator)
            plugins.append(emulator.provider())
            say("RUNWAYML_API_SECRET is not set: running the Runway emulator in-process")
        host = await stack.enter_async_context(Host(plugins=plugins))
        graph = build_graph(host)
        final: State = {}
        async for mode, chunk in graph.astream(
            {"customer": customer}, stream_mode=["custom", "values"]
        ):
            if mode == "values":
                final = chunk
            elif isinstance(chunk, NodeEvent):
                event = chunk.event
                if event.type == "transcript.done":
                    say(f"[{chunk.node}] {event.role}: {event.text}")
                elif event.type == "tool.call":
                    say(f"[{chunk.node}] tool {event.name}({event.arguments})")
        say(f"ticket: {final['ticket']}")
        return final


if __name__ == "__main__":
    # LangGraph runs on asyncio.
    anyio.run(main, *sys.argv[1:2])
