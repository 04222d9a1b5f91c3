"""AvatarNode in a graph, over the in-process ScriptedProvider: results, on_ready,
state-computed requests, streamed session events, cancellation and failures."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from masquerade import (
    START,
    AvatarNode,
    Graph,
    GraphEnded,
    Host,
    JoinCredentials,
    NodeError,
    NodeEvent,
    SessionResult,
    tool,
)
from masquerade.testing import ScriptedProvider

pytestmark = pytest.mark.anyio

SCRIPT: list[dict[str, Any]] = [
    {"say": "Hello, what is your order number?"},
    {"say": "A1001", "role": "user"},
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"say": "It ships tomorrow."},
]


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order."""
    return {"order_id": order_id, "status": "shipped"}


class State(BaseModel):
    customer: str = "Ada"
    call: SessionResult | None = None
    summary: str | None = None


def summarize(state: State) -> dict[str, Any]:
    assert state.call is not None
    return {"summary": f"{state.call.outcome}: {len(state.call.tool_calls)} tool call(s)"}


def concierge_graph(node: AvatarNode) -> Graph[State]:
    graph = Graph(State).add_node("concierge", node).add_node(summarize)
    return graph.add_edge(START, "concierge").add_edge("concierge", "summarize")


async def test_avatar_node_runs_a_session_and_writes_its_result(make_host: Any) -> None:
    provider = ScriptedProvider(SCRIPT, queued_polls=1)
    ready: list[JoinCredentials] = []

    async def personality(state: State) -> str:
        return f"You help {state.customer}."

    node = AvatarNode(
        "scripted",
        avatar=lambda state: f"avatar-for-{state.customer.lower()}",
        tools=[lookup_order],
        personality=personality,
        start_script="Hi there!",
        max_duration=30,
        on_ready=ready.append,
        output_key="call",
    )
    async with make_host(provider) as host:
        final = await concierge_graph(node).run(State(customer="Grace"), host=host)

    assert final.call is not None
    assert final.call.outcome == "completed"
    assert [c.output for c in final.call.tool_calls] == [{"order_id": "A1001", "status": "shipped"}]
    assert final.call.transcript[-1].text == "It ships tomorrow."
    assert final.summary == "completed: 1 tool call(s)"
    request = provider.sessions[0].request
    assert request.personality == "You help Grace."
    assert request.avatar == "avatar-for-grace"
    assert request.start_script == "Hi there!"
    assert request.name == "concierge"  # the node's name when none is given
    assert request.max_duration == 30
    assert [c.public["sessionId"] for c in ready] == [provider.sessions[0].id]
    assert provider.sessions[0].ended == ["completed"]


async def test_async_on_ready_gets_the_secret_credentials_once(make_host: Any) -> None:
    provider = ScriptedProvider(SCRIPT)
    keys: list[str] = []

    async def on_ready(credentials: JoinCredentials) -> None:
        await anyio.lowlevel.checkpoint()
        keys.append(credentials.reveal()["sessionKey"])

    node = AvatarNode("scripted", tools=[lookup_order], on_ready=on_ready, output_key="call")
    async with make_host(provider) as host:
        final = await concierge_graph(node).run(host=host)

    assert keys == ["scripted-session-key-scripted-1"]
    assert final.call is not None
    assert final.call.ok


async def test_stream_wraps_session_events_with_the_node_name(make_host: Any) -> None:
    provider = ScriptedProvider(SCRIPT)
    node = AvatarNode("scripted", tools=[lookup_order], output_key="call")
    host = make_host(provider)
    async with host, concierge_graph(node).stream(host=host) as stream:
        events = [e async for e in stream]

    session_events = [e for e in events if isinstance(e, NodeEvent)]
    assert {e.node for e in session_events} == {"concierge"}
    kinds = [e.event.type for e in session_events]
    assert kinds[0] == "status"
    assert kinds[-1] == "ended"
    assert kinds.index("ready") < kinds.index("tool.call") < kinds.index("tool.result")
    done = [e.event.__dict__["text"] for e in session_events if e.event.type == "transcript.done"]
    assert done == ["Hello, what is your order number?", "A1001", "It ships tomorrow."]
    # node.started comes before the session's events, node.finished after them.
    types = [e.type for e in events]
    first, last = types.index("node.event"), len(types) - 1 - types[::-1].index("node.event")
    assert types[first - 1] == "node.started"
    assert types[last + 1] == "node.finished"
    assert isinstance(events[-1], GraphEnded)
    # The JSON form masks the session key and names the node.
    ready = next(e for e in session_events if e.event.type == "ready").as_json()
    assert ready["node"] == "concierge"
    assert "scripted-session-key" not in str(ready)


async def test_cancelling_the_graph_runs_the_cancel_path_once(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "Hello"}], hold_open=True)
    node = AvatarNode("scripted", output_key="call")
    graph = concierge_graph(node)
    async with make_host(provider) as host:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg, graph.stream(host=host) as events:
                async for event in events:
                    if isinstance(event, NodeEvent) and event.event.type == "transcript.done":
                        tg.cancel_scope.cancel()  # cancel from the outside, mid-call
    assert len(provider.sessions) == 1
    assert provider.sessions[0].ended == ["cancelled"]
    assert events.state is None


async def test_a_failing_branch_ends_the_running_session_through_its_cancel_path(
    make_host: Any,
) -> None:
    provider = ScriptedProvider([{"say": "Hello"}], hold_open=True)
    ready = anyio.Event()

    async def fails_once_the_call_runs(state: State) -> None:
        with anyio.fail_after(5):
            await ready.wait()
        raise RuntimeError("the CRM is down")

    graph = Graph(State)
    graph.add_node(
        "concierge", AvatarNode("scripted", output_key="call", on_ready=lambda _: ready.set())
    )
    graph.add_node("crm", fails_once_the_call_runs)
    graph.add_edge(START, "concierge").add_edge(START, "crm")
    async with make_host(provider) as host:
        with anyio.fail_after(5), pytest.raises(NodeError, match="'crm' failed") as info:
            await graph.run(host=host)

    assert info.value.node == "crm"
    assert len(provider.sessions[0].ended) == 1


async def test_on_ready_that_raises_fails_the_node_and_ends_the_session(make_host: Any) -> None:
    provider = ScriptedProvider(SCRIPT, hold_open=True)

    def on_ready(credentials: JoinCredentials) -> None:
        raise ConnectionError("frontend unreachable")

    node = AvatarNode("scripted", tools=[lookup_order], on_ready=on_ready, output_key="call")
    async with make_host(provider) as host:
        with anyio.fail_after(5), pytest.raises(NodeError) as info:
            await concierge_graph(node).run(host=host)

    assert info.value.node == "concierge"
    assert "ConnectionError: frontend unreachable" in info.value.message
    assert isinstance(info.value.__cause__, ConnectionError)
    assert len(provider.sessions[0].ended) == 1


async def test_unknown_provider_fails_before_anything_runs(make_host: Any) -> None:
    provider = ScriptedProvider(SCRIPT)
    ran: list[str] = []

    def first(state: State) -> None:
        ran.append("first")

    graph = Graph(State).add_node(first)
    graph.add_node("concierge", AvatarNode("runwai", output_key="call"))
    graph.add_edge(START, "first").add_edge("first", "concierge")
    async with make_host(provider) as host:
        with pytest.raises(
            NodeError, match=r"'concierge' failed: ProviderNotFound.*'runwai'"
        ) as info:
            await graph.run(host=host)

    assert "install the plugin that provides it" in info.value.hint
    assert ran == []
    assert provider.sessions == []


async def test_failed_session_lands_in_the_state_for_routing(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "Hello"}, {"fail": "line dropped", "code": "io"}])
    node = AvatarNode("scripted", output_key="call", continue_on_failure=True)
    async with make_host(provider) as host:
        final = await concierge_graph(node).run(host=host)

    assert final.call is not None
    assert (final.call.outcome, final.call.failure_code) == ("failed", "io")
    assert final.summary == "failed: 0 tool call(s)"
    assert provider.sessions[0].ended == ["error"]


async def test_failed_call_fails_the_run_by_default(make_host: Any) -> None:
    from masquerade import CallFailed

    provider = ScriptedProvider([{"say": "Hello"}, {"fail": "line dropped", "code": "io"}])
    graph = concierge_graph(AvatarNode("scripted", output_key="call"))
    async with make_host(provider) as host:
        with pytest.raises(NodeError, match=r"'concierge' failed: CallFailed: .*dropped") as info:
            await graph.run(host=host)

    cause = info.value.__cause__
    assert isinstance(cause, CallFailed)
    assert (cause.result.outcome, cause.failure_code) == ("failed", "io")
    assert "continue_on_failure=True" in info.value.hint
    assert provider.sessions[0].ended == ["error"]  # the cancel path ran


async def test_output_key_must_be_a_state_field() -> None:
    from masquerade import GraphValidationError

    graph = Graph(State).add_node("concierge", AvatarNode("scripted", output_key="cal"))
    graph.add_edge(START, "concierge")
    with pytest.raises(GraphValidationError, match=r"writes 'cal'.*did you mean 'call'"):
        graph.validate()


async def test_avatar_node_is_a_plain_callable_outside_a_graph(make_host: Any) -> None:
    provider = ScriptedProvider(SCRIPT)
    async with make_host(provider) as host:
        node = AvatarNode(
            "scripted",
            tools=[lookup_order],
            personality=lambda state: f"for {state['customer']}",
            host=host,
        )
        update = await node({"customer": "Linus"})

    assert list(update) == ["session"]
    assert update["session"].outcome == "completed"
    assert provider.sessions[0].request.personality == "for Linus"


def test_bad_tools_fail_where_the_node_is_defined() -> None:
    from masquerade import ToolDefinitionError

    @tool(name="same")
    def one() -> None: ...

    @tool(name="same")
    def two() -> None: ...

    with pytest.raises(ToolDefinitionError, match="two tools are named 'same'"):
        AvatarNode("scripted", tools=[one, two])
    assert "lookup_order" in repr(AvatarNode("scripted", tools=[lookup_order]))


async def test_cancelled_host_exits_cleanly(make_host: Any) -> None:
    # A run that ends before its host leaves the host usable for the next run.
    provider = ScriptedProvider(SCRIPT)
    node = AvatarNode("scripted", tools=[lookup_order], output_key="call")
    host: Host = make_host(provider)
    async with host:
        first = await concierge_graph(node).run(host=host)
        second = await concierge_graph(node).run(host=host)
    assert first.call
    assert second.call
    assert first.call.session_id != second.call.session_id
    assert not host.running


# ---------------------------------------------------------------- over the Runway emulator
# The same node against the Runway plugin and its loopback emulator: real HTTP, a real
# websocket room, backend tools over RPC, the final transcript from the REST API.
@pytest.fixture
def runway() -> Any:
    """The Runway emulator module (skips when the Runway plugin is not installed)."""
    return pytest.importorskip("masquerade_runway.emulator")


RUNWAY_SCRIPT: list[dict[str, Any]] = [
    {"say": "Hello, what is your order number?"},
    {"say": "A1001", "role": "user"},
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"say": "It ships tomorrow."},
    {"hangup": True},
]


def runway_end_calls(emulator: Any, session_id: str) -> int:
    return sum(
        1
        for _, message in emulator.session(session_id)["data"]
        if isinstance(message, dict) and message.get("type") == "END_CALL"
    )


async def test_avatar_node_over_the_runway_emulator(make_host: Any, runway: Any) -> None:
    ready: list[JoinCredentials] = []
    async with runway.RunwayEmulator(
        # queued long enough for a poll to see it on a loaded machine
        script=RUNWAY_SCRIPT, plan={"queued": 0.5, "provisioning": 0.05}
    ) as emulator:
        node = AvatarNode(
            "runway",
            avatar="human-resource",
            tools=[lookup_order],
            personality=lambda state: f"You help {state.customer}.",
            on_ready=ready.append,
            output_key="call",
        )
        host = make_host(emulator.provider())
        async with host, concierge_graph(node).stream(State(customer="Ada"), host=host) as stream:
            events = [e async for e in stream]

        (session_id,) = emulator.session_ids
        body = emulator.session(session_id)["body"]

    final = events[-1]
    assert isinstance(final, GraphEnded)
    call = final.state.call
    assert call.outcome == "completed"
    assert call.provider_session_id == session_id
    assert [(c.name, c.output) for c in call.tool_calls] == [
        ("lookup_order", {"order_id": "A1001", "status": "shipped"})
    ]
    assert final.state.summary == "completed: 1 tool call(s)"
    assert body["personality"] == "You help Ada."
    assert body["avatar"] == {"type": "runway-preset", "presetId": "human-resource"}
    assert [c.public["sessionId"] for c in ready] == [session_id]
    spoken = [
        e.event.__dict__["text"]
        for e in events
        if isinstance(e, NodeEvent) and e.event.type == "transcript.done"
    ]
    assert spoken == ["Hello, what is your order number?", "A1001", "It ships tomorrow."]
    statuses = [
        e.event.__dict__ for e in events if isinstance(e, NodeEvent) and e.event.type == "status"
    ]
    assert any(s["queued"] for s in statuses)  # the queue wait was streamed


async def test_cancelling_a_runway_call_runs_its_cancel_path_once(
    make_host: Any, runway: Any
) -> None:
    # No hangup: the avatar stays in the call until it is ended.
    async with runway.RunwayEmulator(script=[{"say": "Hello"}]) as emulator:
        node = AvatarNode("runway", avatar="human-resource", output_key="call")
        async with make_host(emulator.provider()) as host:
            with anyio.fail_after(20):
                async with (
                    anyio.create_task_group() as tg,
                    concierge_graph(node).stream(host=host) as events,
                ):
                    async for event in events:
                        if isinstance(event, NodeEvent) and event.event.type == "transcript.delta":
                            tg.cancel_scope.cancel()
        (session_id,) = emulator.session_ids
        snapshot = emulator.session(session_id)
        assert runway_end_calls(emulator, session_id) == 1
        assert emulator.count("DELETE") == 0
        assert snapshot["status"] == "COMPLETED"
    assert events.state is None
