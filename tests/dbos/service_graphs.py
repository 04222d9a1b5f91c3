"""Graphs the call-service tests serve: a Runway call, and an OpenAI SIP call."""

from __future__ import annotations

import operator
from typing import Annotated

from pydantic import BaseModel

from masquerade import END, START, AvatarNode, Graph, SessionResult, tool


class Call(BaseModel):
    customer: str = "Ada"
    order_id: str = "A1001"
    log: Annotated[list[str], operator.add] = []
    call: SessionResult | None = None


@tool
def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number."""
    return {"order_id": order_id, "status": "shipped"}


avatar = AvatarNode(
    "runway", avatar="cooking-teacher", tools=[lookup_order], output_key="call", max_duration=60
)


def after(state: Call) -> dict[str, object]:
    assert state.call is not None
    return {"log": [f"after:{state.call.outcome}"]}


graph = Graph(Call, name="service-call")
graph.add_node("call", avatar).add_node("after", after)
graph.add_edge(START, "call").add_edge("call", "after").add_edge("after", END)


class Phone(BaseModel):
    call_id: str | None = None
    sip_headers: dict[str, str] = {}
    call: SessionResult | None = None


async def answer(state: Phone) -> dict[str, object]:
    """Attach to the incoming SIP call the service accepted (its id is in the state)."""
    node = AvatarNode(
        "openai",
        tools=[lookup_order],
        output_key="call",
        personality="You answer the phone for a shop.",
        options={"call_id": state.call_id, "hangup_on_end": True},
        max_duration=30,
    )
    return dict(await node(state))


phone = Graph(Phone, name="service-phone")
phone.add_node("answer", answer)
phone.add_edge(START, "answer").add_edge("answer", END)


class Browser(BaseModel):
    call: SessionResult | None = None


#: A browser frontend joins over WebRTC; the backend answers its offer and keeps the tools.
browser_node = AvatarNode(
    "openai",
    tools=[lookup_order],
    output_key="call",
    personality="You help customers of a shop.",
    options={"transport": "webrtc"},
    max_duration=30,
)
browser = Graph(Browser, name="service-browser")
browser.add_node("call", browser_node)
browser.add_edge(START, "call").add_edge("call", END)
