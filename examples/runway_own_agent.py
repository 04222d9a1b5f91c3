"""Your own voice agent behind a Runway avatar (the ``integration`` session option).

Your agent (any LLM pipeline, an OpenAI Realtime agent, a LiveKit Agents worker...) is in a
LiveKit room you control. Runway's avatar worker joins that room too, lip-syncs your
agent's audio and publishes the avatar's video; your frontend joins the same room. The
graph runs the avatar as one node and reads the call's result in the next one.

    masquerade run examples/runway_own_agent.py

Offline (no RUNWAYML_API_SECRET) the Runway emulator stands in for the avatar joining your
room, and the user hangs up after two seconds. For a real call, set RUNWAYML_API_SECRET,
LIVEKIT_URL (wss://...), LIVEKIT_ROOM, and LIVEKIT_AVATAR_TOKEN: a LiveKit token that lets
the avatar publish in that room (e.g. ``lk token create --join --room ROOM``); your agent
joins the room as ``support-agent``.
"""

import os

from pydantic import BaseModel

from masquerade import END, START, AvatarNode, Graph, SessionResult
from masquerade_runway import LiveKitIntegration

#: Offline, the user hangs up after two seconds (your agent, not the emulator, speaks).
EMULATOR_SCRIPTS = {"runway": [{"wait": 2}, {"hangup": True}]}

your_room = LiveKitIntegration(
    url=os.environ.get("LIVEKIT_URL", "wss://your-project.livekit.cloud"),
    token=os.environ.get("LIVEKIT_AVATAR_TOKEN", "token-for-the-avatar-worker"),
    room_name=os.environ.get("LIVEKIT_ROOM", "support-42"),
    agent_identity="support-agent",  # the avatar speaks with this participant's voice
)


class Support(BaseModel):
    call: SessionResult | None = None
    summary: str = ""


def show_room(credentials: object) -> None:
    print("the frontend joins your room:", credentials.public["roomName"])  # type: ignore[attr-defined]


avatar = AvatarNode(
    "runway",
    avatar="influencer",
    output_key="call",
    options={"integration": your_room},  # no tools: your agent owns the conversation
    on_ready=show_room,
)


def summarize(state: Support) -> dict[str, str]:
    assert state.call is not None
    return {"summary": f"{state.call.outcome} after {state.call.duration_s}s"}


graph = Graph(Support).add_node("call", avatar).add_node("summarize", summarize)
graph.add_edge(START, "call").add_edge("call", "summarize").add_edge("summarize", END)
