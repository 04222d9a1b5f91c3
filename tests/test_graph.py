"""Graph semantics: sequence, conditional edges, fan-out with reducers, joins, errors."""

from __future__ import annotations

import operator
import re
from typing import Annotated, Any, Literal

import anyio
import pytest
from pydantic import BaseModel, Field

from masquerade import (
    END,
    START,
    Graph,
    GraphEnded,
    GraphError,
    GraphValidationError,
    Host,
    NodeError,
    NodeFinished,
    NodeStarted,
)
from masquerade.graph import current_run

pytestmark = pytest.mark.anyio


class State(BaseModel):
    count: int = 0
    path: Annotated[list[str], operator.add] = Field(default_factory=list)
    answer: str | None = None


def visit(name: str, **extra: Any) -> Any:
    async def node(state: State) -> dict[str, Any]:
        return {"path": [name], **extra}

    node.__name__ = name
    return node


@pytest.fixture
async def host(make_host: Any) -> Any:
    async with make_host() as running:
        yield running


# ---------------------------------------------------------------- sequence
async def test_sequence_runs_nodes_in_order_and_merges_updates(host: Host) -> None:
    def double(state: State) -> dict[str, Any]:  # sync: runs in a worker thread
        return {"count": state.count * 2, "path": ["double"]}

    async def add_one(state: State) -> dict[str, Any]:
        return {"count": state.count + 1, "path": ["add_one"]}

    graph = Graph(State)
    graph.add_node("add_one", add_one).add_node(double)
    graph.add_edge(START, "add_one").add_edge("add_one", "double").add_edge("double", END)

    final = await graph.run(State(count=3), host=host)

    assert final.count == 8
    assert final.path == ["add_one", "double"]


async def test_nodes_get_a_private_copy_of_the_state(host: Host) -> None:
    seen: list[list[str]] = []

    async def mutate(state: State) -> None:
        state.path.append("sneaky")  # in place, and returns nothing

    async def look(state: State) -> None:
        seen.append(list(state.path))

    graph = Graph(State).add_node(mutate).add_node(look)
    graph.add_edge(START, "mutate").add_edge("mutate", "look")

    final = await graph.run(State(path=["start"]), host=host)

    assert seen == [["start"]]
    assert final.path == ["start"]


async def test_returning_the_whole_state_or_a_partial_model(host: Host) -> None:
    class Partial(BaseModel):
        answer: str | None = None
        count: int = 0

    async def whole(state: State) -> State:
        return state.model_copy(update={"count": 41})

    async def partial(state: State) -> Partial:
        return Partial(answer=f"{state.count + 1}")  # count was not set: not written

    graph = Graph(State).add_node(whole).add_node(partial)
    graph.add_edge(START, "whole").add_edge("whole", "partial")

    final = await graph.run({"path": ["x"]}, host=host)

    assert (final.count, final.answer, final.path) == (41, "42", ["x"])


# ---------------------------------------------------------------- conditional edges
async def test_conditional_edges_with_mapping_loop_until_done(host: Host) -> None:
    async def bump(state: State) -> dict[str, Any]:
        return {"count": state.count + 1, "path": ["bump"]}

    def route(state: State) -> bool:
        return state.count >= 3

    graph = Graph(State).add_node(bump).add_node("finish", visit("finish"))
    graph.add_edge(START, "bump")
    graph.add_conditional_edges("bump", route, {False: "bump", True: "finish"})

    final = await graph.run(host=host)

    assert final.count == 3
    assert final.path == ["bump", "bump", "bump", "finish"]


async def test_router_with_literal_annotation_async_router_and_end(host: Host) -> None:
    async def route(state: State) -> Literal["yes", "__end__"]:
        return "yes" if state.answer == "go" else "__end__"  # END's value

    graph = Graph(State).add_node("start", visit("start")).add_node("yes", visit("yes"))
    graph.add_edge(START, "start").add_conditional_edges("start", route)

    assert (await graph.run({"answer": "go"}, host=host)).path == ["start", "yes"]
    assert (await graph.run({"answer": "stop"}, host=host)).path == ["start"]


async def test_router_fan_out_to_several_nodes(host: Host) -> None:
    graph = Graph(State)
    for name in ("triage", "a", "b", "c"):
        graph.add_node(name, visit(name))
    graph.add_edge(START, "triage")
    graph.add_conditional_edges("triage", lambda s: ["c", "a"], ["a", "b", "c"])

    final = await graph.run(host=host)

    assert final.path[0] == "triage"
    assert sorted(final.path[1:]) == ["a", "c"]


async def test_router_returning_an_unknown_branch_names_the_node(host: Host) -> None:
    graph = Graph(State).add_node("triage", visit("triage")).add_node("a", visit("a"))
    graph.add_edge(START, "triage")
    graph.add_conditional_edges("triage", lambda s: "refund", {"ok": "a", "done": END})

    with pytest.raises(GraphError, match=r"router after node 'triage' returned 'refund'") as info:
        await graph.run(host=host)
    assert "'ok', 'done'" in info.value.message


async def test_router_that_raises_names_the_node(host: Host) -> None:
    def broken(state: State) -> str:
        raise KeyError("nope")

    graph = Graph(State).add_node("triage", visit("triage")).add_node("a", visit("a"))
    graph.add_edge(START, "triage").add_conditional_edges("triage", broken, ["a"])

    with pytest.raises(GraphError, match=r"router after node 'triage' \(broken\) raised KeyError"):
        await graph.run(host=host)


# ---------------------------------------------------------------- fan-out, reducers, joins
async def test_fan_out_runs_branches_concurrently_and_reduces(host: Host) -> None:
    # Each branch waits for the other to start: this only finishes if they run at once.
    started = {"left": anyio.Event(), "right": anyio.Event()}

    def branch(me: str, other: str) -> Any:
        async def node(state: State) -> dict[str, Any]:
            started[me].set()
            with anyio.fail_after(5):
                await started[other].wait()
            return {"path": [me]}

        return node

    graph = Graph(State).add_node("split", visit("split"))
    graph.add_node("left", branch("left", "right")).add_node("right", branch("right", "left"))
    graph.add_node("merge", visit("merge"))
    graph.add_edge(START, "split").add_edge("split", "left").add_edge("split", "right")
    graph.add_edge("left", "merge").add_edge("right", "merge")

    final = await graph.run(host=host)

    # Reducer order within a step is the order nodes were added, not finishing order.
    assert final.path == ["split", "left", "right", "merge"]  # merge ran once


async def test_two_branches_writing_a_plain_field_is_a_clear_error(host: Host) -> None:
    graph = Graph(State).add_node("split", visit("split"))
    graph.add_node("a", visit("a", answer="from a")).add_node("b", visit("b", answer="from b"))
    graph.add_edge(START, "split").add_edge("split", "a").add_edge("split", "b")

    with pytest.raises(GraphError, match=r"nodes 'a' and 'b' both wrote 'answer'") as info:
        await graph.run(host=host)
    assert "Annotated" in info.value.hint


async def test_custom_reducer_and_last_write_wins_across_steps(host: Host) -> None:
    def keep_max(current: int, new: int) -> int:
        return max(current, new)

    class Scores(BaseModel):
        best: Annotated[int, keep_max] = 0
        last: str = ""

    def scorer(value: int) -> Any:
        async def node(state: Scores) -> dict[str, Any]:
            return {"best": value}

        return node

    graph = Graph(Scores)
    graph.add_node("a", scorer(7)).add_node("b", scorer(3)).add_node("c", scorer(5))
    graph.add_node("first", lambda s: {"last": "first"}).add_node("second", lambda s: {"last": "2"})
    for name in ("a", "b", "c"):
        graph.add_edge(START, name)
    graph.add_edge(["a", "b", "c"], "first").add_edge("first", "second")

    final = await graph.run(host=host)

    assert (final.best, final.last) == (7, "2")


async def test_join_waits_for_branches_of_different_length(host: Host) -> None:
    graph = Graph(State)
    for name in ("split", "short", "long1", "long2", "join"):
        graph.add_node(name, visit(name))
    graph.add_edge(START, "split").add_edge("split", "short").add_edge("split", "long1")
    graph.add_edge("long1", "long2").add_edge(["short", "long2"], "join")

    steps: list[tuple[int, str]] = []
    async with graph.stream(host=host) as events:
        async for event in events:
            if isinstance(event, NodeStarted):
                steps.append((event.step, event.node))

    assert events.state is not None
    assert events.state.path.count("join") == 1
    assert steps[-1] == (4, "join")


# ---------------------------------------------------------------- bad updates
async def test_update_that_fails_validation_names_node_and_field(host: Host) -> None:
    graph = Graph(State).add_node("ok", visit("ok")).add_node("bad", visit("bad", count="many"))
    graph.add_edge(START, "ok").add_edge("ok", "bad")

    with pytest.raises(GraphError, match=r"update of node 'bad' does not fit State: count"):
        await graph.run(host=host)


async def test_update_with_unknown_field_suggests_the_right_one(host: Host) -> None:
    graph = Graph(State).add_node("typo", lambda s: {"anwser": "42"})
    graph.add_edge(START, "typo")

    with pytest.raises(GraphError, match=r"'typo' wrote 'anwser'.*did you mean 'answer'"):
        await graph.run(host=host)


async def test_node_returning_something_else_is_explained(host: Host) -> None:
    graph = Graph(State).add_node("weird", lambda s: 42)
    graph.add_edge(START, "weird")

    with pytest.raises(GraphError, match=r"node 'weird' returned a int") as info:
        await graph.run(host=host)
    assert "return a dict" in info.value.hint


async def test_whole_state_with_changed_reducer_field_is_refused(host: Host) -> None:
    async def appends(state: State) -> State:
        state.path.append("x")
        return state

    graph = Graph(State).add_node(appends).add_edge(START, "appends")

    with pytest.raises(GraphError, match=r"changed reducer field 'path'"):
        await graph.run(host=host)


async def test_invalid_initial_state_lists_required_fields() -> None:
    class Needs(BaseModel):
        customer: str

    graph = Graph(Needs).add_node("n", lambda s: None).add_edge(START, "n")

    with pytest.raises(GraphError, match="initial state does not fit Needs: customer") as info:
        graph.stream({})
    assert "requires customer" in info.value.hint


# ---------------------------------------------------------------- node errors
async def test_node_that_raises_stops_the_run_with_its_name(host: Host) -> None:
    ran: list[str] = []

    async def explode(state: State) -> None:
        raise ValueError("inventory is down")

    async def after(state: State) -> None:
        ran.append("after")

    graph = Graph(State).add_node(explode).add_node(after)
    graph.add_edge(START, "explode").add_edge("explode", "after")

    with pytest.raises(
        NodeError, match=r"node 'explode' failed: ValueError: inventory is down"
    ) as info:
        await graph.run(host=host)
    assert info.value.node == "explode"
    assert isinstance(info.value.__cause__, ValueError)
    assert ran == []


async def test_failing_branch_cancels_its_siblings(host: Host) -> None:
    cancelled = anyio.Event()

    async def slow(state: State) -> None:
        try:
            await anyio.sleep(30)
        finally:
            cancelled.set()

    def fail(state: State) -> None:
        raise RuntimeError("boom")

    graph = Graph(State).add_node(slow).add_node(fail)
    graph.add_edge(START, "slow").add_edge(START, "fail")

    with anyio.fail_after(5), pytest.raises(NodeError, match="'fail'"):
        await graph.run(host=host)
    assert cancelled.is_set()


async def test_runaway_cycle_is_stopped(host: Host) -> None:
    graph = Graph(State).add_node("spin", visit("spin"))
    graph.add_edge(START, "spin").add_conditional_edges("spin", lambda s: "spin", ["spin", END])

    with pytest.raises(GraphError, match="more than 5 steps"):
        await graph.run(host=host, max_steps=5)


# ---------------------------------------------------------------- validation
def test_unknown_node_in_an_edge_suggests_a_name() -> None:
    graph = Graph(State).add_node("lookup", visit("lookup"))
    graph.add_edge(START, "lookup").add_edge("lookup", "sumary")
    graph.add_node("summary", visit("summary"))

    with pytest.raises(GraphValidationError, match=r"'sumary'.*did you mean 'summary'"):
        graph.validate()


def test_graph_without_entry() -> None:
    graph = Graph(State).add_node("a", visit("a"))
    with pytest.raises(GraphValidationError, match="no edge leaves START") as info:
        graph.validate()
    assert "add_edge(START, 'a')" in info.value.hint


def test_unreachable_node() -> None:
    graph = Graph(State).add_node("a", visit("a")).add_node("orphan", visit("orphan"))
    graph.add_edge(START, "a")
    with pytest.raises(GraphValidationError, match="'orphan' can never run"):
        graph.validate()


def test_cycle_without_a_way_out() -> None:
    graph = Graph(State)
    for name in ("a", "b", "c"):
        graph.add_node(name, visit(name))
    graph.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", "b")
    with pytest.raises(GraphValidationError, match=r"cycle through 'a', 'b', 'c' has no way out"):
        graph.validate()
    # A router that can leave the cycle fixes it.
    graph = Graph(State)
    for name in ("a", "b", "c"):
        graph.add_node(name, visit(name))
    graph.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c")
    graph.add_conditional_edges("c", lambda s: END, ["b", END])
    graph.validate()


def test_router_mapping_to_unknown_node_and_bad_nodes() -> None:
    graph = Graph(State).add_node("a", visit("a"))
    graph.add_edge(START, "a").add_conditional_edges("a", lambda s: "x", {"x": "nowhere"})
    with pytest.raises(GraphValidationError, match="router after 'a' names node 'nowhere'"):
        graph.validate()
    with pytest.raises(GraphValidationError, match="already added"):
        graph.add_node("a", visit("a"))
    with pytest.raises(GraphValidationError, match="reserved"):
        graph.add_node(END, visit("a"))
    with pytest.raises(GraphValidationError, match="not a callable"):
        graph.add_node("b", "not a node")  # type: ignore[arg-type]


def test_state_must_be_a_model() -> None:
    with pytest.raises(GraphError, match="pydantic model class"):
        Graph(dict)  # type: ignore[type-var]


def test_run_validates_before_anything_runs() -> None:
    graph = Graph(State).add_node("a", visit("a")).add_edge(START, "b")
    with pytest.raises(GraphValidationError, match="'b'"):
        graph.stream()


def test_mermaid_shows_every_edge() -> None:
    graph = Graph(State).add_node("a", visit("a")).add_node("b", visit("b"))
    graph.add_edge(START, "a").add_conditional_edges(
        "a", lambda s: "b", {"again": "b", "stop": END}
    )
    text = graph.mermaid()
    assert "__start__([START]) --> a" in text
    assert "a -. again .-> b" in text
    assert "a -. stop .-> __end__([END])" in text


# ---------------------------------------------------------------- streaming
async def test_stream_yields_node_events_then_the_final_state(host: Host) -> None:
    graph = Graph(State).add_node("a", visit("a")).add_node("b", visit("b", answer="done"))
    graph.add_edge(START, "a").add_edge("a", "b")

    async with graph.stream(host=host) as events:
        seen = [event async for event in events]

    assert [(e.type, getattr(e, "node", None)) for e in seen] == [
        ("node.started", "a"),
        ("node.finished", "a"),
        ("node.started", "b"),
        ("node.finished", "b"),
        ("graph.ended", None),
    ]
    finished = seen[3]
    assert isinstance(finished, NodeFinished)
    assert finished.update == {"path": ["b"], "answer": "done"}
    ended = seen[-1]
    assert isinstance(ended, GraphEnded)
    assert ended.state.path == ["a", "b"]
    assert ended.steps == 2
    assert ended.as_json()["state"]["answer"] == "done"


async def test_run_on_event_sees_what_stream_yields(host: Host) -> None:
    graph = Graph(State).add_node("a", visit("a")).add_node("b", visit("b"))
    graph.add_edge(START, "a").add_edge("a", "b")
    sync_seen: list[str] = []
    async_seen: list[str] = []

    async def record(event: Any) -> None:
        async_seen.append(event.type)

    final = await graph.run(host=host, on_event=lambda event: sync_seen.append(event.type))
    await graph.run(host=host, on_event=record)

    assert final.path == ["a", "b"]
    assert sync_seen == async_seen
    assert sync_seen == ["node.started", "node.finished"] * 2 + ["graph.ended"]


async def test_iterating_the_stream_without_its_block_is_refused(host: Host) -> None:
    graph = Graph(State).add_node("a", visit("a")).add_edge(START, "a")
    with pytest.raises(GraphError, match=r"must be used as a block") as info:
        async for _ in graph.stream(host=host):
            pass
    assert "async with graph.stream(state) as events" in info.value.hint


async def test_leaving_the_stream_early_cancels_the_run(host: Host) -> None:
    cancelled = anyio.Event()

    async def slow(state: State) -> None:
        try:
            await anyio.sleep(30)
        finally:
            cancelled.set()

    graph = Graph(State).add_node(slow).add_edge(START, "slow")
    with anyio.fail_after(5):
        async with graph.stream(host=host) as events:
            async for event in events:
                assert event.type == "node.started"
                break
    assert cancelled.is_set()
    assert events.state is None


async def test_sync_nodes_see_the_run_context_in_their_thread(host: Host) -> None:
    def where(state: State) -> dict[str, Any]:
        context = current_run()
        return {"answer": f"{context.node}@{context.step}" if context else "outside"}

    graph = Graph(State).add_node("first", visit("first")).add_node(where)
    graph.add_edge(START, "first").add_edge("first", "where")

    assert (await graph.run(host=host)).answer == "where@2"
    assert current_run() is None  # nothing leaks out of the run


async def test_run_without_a_host_enters_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASQUERADE_PLUGINS", "none-at-all")  # no entry-point plugins
    hosts: list[Host] = []

    async def record(state: State) -> None:
        context = current_run()
        assert context is not None
        assert context.node == "record"
        assert context.host.running
        hosts.append(context.host)

    graph = Graph(State).add_node(record).add_edge(START, "record")
    await graph.run()

    assert len(hosts) == 1
    assert not hosts[0].running  # exited after the run


async def test_error_message_reads_well_in_full(host: Host) -> None:
    graph = Graph(State).add_node("x", lambda s: {"count": "n/a"}).add_edge(START, "x")
    with pytest.raises(GraphError) as info:
        await graph.run(host=host)
    assert re.fullmatch(
        r"the update of node 'x' does not fit State: count: Input should be a valid integer.*",
        info.value.message,
    )
