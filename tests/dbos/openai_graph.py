"""A graph with an OpenAI Realtime AvatarNode (a plain websocket session: not resumable)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from masquerade import END, START, AvatarNode, Graph, SessionResult


def _mark(text: str) -> None:
    marks = os.environ.get("MASQUERADE_TEST_MARKS")
    if marks:
        with Path(marks).open("a") as out:
            out.write(f"{text}\n")


class Voice(BaseModel):
    call: SessionResult | None = None


voice = AvatarNode(
    "openai",
    personality="You are terse.",
    output_key="call",
    max_duration=float(os.environ.get("MASQUERADE_TEST_CALL_S", "30")),
    on_ready=lambda credentials: _mark("ready"),
)

graph = Graph(Voice, name="voice-call").add_node("voice", voice)
graph.add_edge(START, "voice").add_edge("voice", END)


class Phone(BaseModel):
    call_id: str | None = None
    call: SessionResult | None = None


async def answer(state: Phone) -> dict[str, object]:
    """Attach to the SIP call whose id is in the state (the sideband websocket)."""
    node = AvatarNode(
        "openai",
        personality="You answer the phone for a shop.",
        output_key="call",
        options={"call_id": state.call_id},
        max_duration=60,
    )
    return dict(await node(state))


phone = Graph(Phone, name="phone-call").add_node("answer", answer)
phone.add_edge(START, "answer").add_edge("answer", END)
