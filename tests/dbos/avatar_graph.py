"""A graph with a Runway AvatarNode, run by worker subprocesses in the recovery tests.

``MASQUERADE_TEST_MARKS`` names a file each node appends to (how tests count runs of a
node); ``MASQUERADE_TEST_PAUSE`` makes the call node wait that long after the call
ended, before its step is checkpointed (the "crash after the call" window).
"""

from __future__ import annotations

import operator
import os
from pathlib import Path
from typing import Annotated

import anyio
from pydantic import BaseModel

from masquerade import END, START, AvatarNode, Graph, SessionResult, tool


def _mark(text: str) -> None:
    marks = os.environ.get("MASQUERADE_TEST_MARKS")
    if marks:
        with Path(marks).open("a") as out:
            out.write(f"{text}\n")


class Call(BaseModel):
    name: str = "run"
    log: Annotated[list[str], operator.add] = []
    call: SessionResult | None = None


@tool
def lookup(n: int) -> dict[str, int]:
    """Look up a number."""
    _mark(f"tool:{n}")
    return {"n": n}


async def before(state: Call) -> dict[str, object]:
    _mark(f"{state.name}:before")
    return {"log": ["before"]}


avatar = AvatarNode(
    "runway", avatar="cooking-teacher", tools=[lookup], output_key="call", max_duration=120
)


async def call(state: Call) -> dict[str, object]:
    _mark(f"{state.name}:call")
    update = await avatar(state)
    _mark(f"{state.name}:call-ended")
    await anyio.sleep(float(os.environ.get("MASQUERADE_TEST_PAUSE", "0")))
    return dict(update)


def after(state: Call) -> dict[str, object]:
    _mark(f"{state.name}:after")
    assert state.call is not None
    return {"log": [f"after:{state.call.outcome}"]}


graph = Graph(Call, name="avatar-call")
graph.add_node("before", before).add_node("call", call).add_node("after", after)
graph.add_edge(START, "before").add_edge("before", "call").add_edge("call", "after")
graph.add_edge("after", END)
