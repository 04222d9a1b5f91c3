"""The same AvatarNode as a node of LangGraph's StateGraph."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
from pydantic import BaseModel, Field

from masquerade import AvatarNode, NodeEvent, SessionResult, tool
from masquerade.testing import ScriptedProvider

pytest.importorskip("langgraph")
from langgraph.graph import END, START, StateGraph

pytestmark = pytest.mark.anyio


# LangGraph runs on asyncio only (it schedules nodes with asyncio tasks), so these tests
# override the trio parametrization of the root conftest.
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@tool
def book_slot(day: str) -> str:
    """Book a delivery slot."""
    return f"booked {day}"


SCRIPT: list[dict[str, Any]] = [
    {"say": "Which day suits you?"},
    {"say": "Monday", "role": "user"},
    {"tool": "book_slot", "args": {"day": "Monday"}},
    {"say": "Booked Monday."},
]


class DictState(TypedDict, total=False):
    customer: str
    session: SessionResult
    ticket: str


async def test_avatar_node_in_a_typed_dict_state_graph(make_host: Any) -> None:
    provider = ScriptedProvider(SCRIPT)
    async with make_host(provider) as host:
        node = AvatarNode(
            "scripted",
            tools=[book_slot],
            personality=lambda state: f"You book deliveries for {state['customer']}.",
            host=host,
        )
        builder = StateGraph(DictState)
        builder.add_node("concierge", node)
        builder.add_node("ticket", lambda s: {"ticket": s["session"].tool_calls[0].output})
        builder.add_edge(START, "concierge")
        builder.add_edge("concierge", "ticket")
        builder.add_edge("ticket", END)
        graph = builder.compile()

        final = await graph.ainvoke({"customer": "Ada"})

    assert final["ticket"] == "booked Monday"
    assert final["session"].outcome == "completed"
    assert provider.sessions[0].request.personality == "You book deliveries for Ada."
    assert provider.sessions[0].request.name == "concierge"  # LangGraph's node name
    assert provider.sessions[0].ended == ["completed"]


class ModelState(BaseModel):
    customer: str = "Grace"
    call: SessionResult | None = None
    log: Annotated[list[str], operator.add] = Field(default_factory=list)


async def test_session_events_go_to_langgraphs_custom_stream(make_host: Any) -> None:
    provider = ScriptedProvider(SCRIPT)
    async with make_host(provider) as host:
        builder = StateGraph(ModelState)
        builder.add_node(
            "concierge", AvatarNode("scripted", tools=[book_slot], output_key="call", host=host)
        )
        builder.add_node("log", lambda s: {"log": [s.call.outcome]})
        builder.add_edge(START, "concierge")
        builder.add_edge("concierge", "log")
        graph = builder.compile()

        custom: list[Any] = []
        updates: list[Any] = []
        async for mode, chunk in graph.astream(ModelState(), stream_mode=["custom", "updates"]):
            (custom if mode == "custom" else updates).append(chunk)

    assert all(isinstance(c, NodeEvent) for c in custom)
    assert {c.node for c in custom} == {"concierge"}
    kinds = [c.event.type for c in custom]
    assert kinds.count("tool.result") == 1
    assert kinds[-1] == "ended"
    assert [next(iter(u)) for u in updates] == ["concierge", "log"]
    assert updates[-1]["log"] == {"log": ["completed"]}


async def test_without_a_host_the_node_enters_a_fresh_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No host given and no masquerade graph around it: the node enters a fresh Host() for
    # the call and leaves it afterwards (here a Host that also registers the scripted
    # provider, and no entry-point plugins).
    provider = ScriptedProvider(SCRIPT)
    monkeypatch.setenv("MASQUERADE_PLUGINS", "none-at-all")
    created: list[Any] = []

    from masquerade import host as host_module

    class RecordingHost(host_module.Host):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(plugins=[provider], **kwargs)
            created.append(self)

    monkeypatch.setattr(host_module, "Host", RecordingHost)
    builder = StateGraph(DictState)
    builder.add_node("concierge", AvatarNode("scripted", tools=[book_slot]))
    builder.add_edge(START, "concierge")
    final = await builder.compile().ainvoke({"customer": "Bo"})

    assert final["session"].ok
    assert len(created) == 1
    assert not created[0].running
