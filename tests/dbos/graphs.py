"""Graphs the durable-runs tests run (importable by worker subprocesses by file path)."""

from __future__ import annotations

import operator
import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel

from masquerade import END, START, Graph


class Counting(BaseModel):
    name: str = "ada"
    log: Annotated[list[str], operator.add] = []
    total: int = 0


def _mark(node: str) -> None:
    """Append the node name to MARKS_FILE: how tests see which node ran how often."""
    marks = os.environ.get("MASQUERADE_TEST_MARKS")
    if marks:
        with Path(marks).open("a") as out:
            out.write(f"{node}\n")


async def first(state: Counting) -> dict[str, object]:
    _mark("first")
    return {"log": [f"first:{state.name}"], "total": state.total + 1}


def second(state: Counting) -> dict[str, object]:
    _mark("second")
    return {"log": ["second"], "total": state.total + 10}


counting = Graph(Counting, name="counting")
counting.add_node("first", first).add_node("second", second)
counting.add_edge(START, "first").add_edge("first", "second").add_edge("second", END)


class Slow(BaseModel):
    name: str = "run"
    log: Annotated[list[str], operator.add] = []


async def before(state: Slow) -> dict[str, object]:
    _mark(f"{state.name}:before")
    return {"log": ["before"]}


async def during(state: Slow) -> dict[str, object]:
    """Runs until the file MASQUERADE_TEST_GATE exists (the test opens the gate once
    it did what it had to do mid-node, whatever the machine's load), else for
    MASQUERADE_TEST_SLOW seconds."""
    import anyio

    _mark(f"{state.name}:during")
    gate = os.environ.get("MASQUERADE_TEST_GATE")
    if gate:
        while not await anyio.Path(gate).exists():  # noqa: ASYNC110 - set by another process
            await anyio.sleep(0.02)
    else:
        await anyio.sleep(float(os.environ.get("MASQUERADE_TEST_SLOW", "1.0")))
    return {"log": ["during"]}


def after(state: Slow) -> dict[str, object]:
    _mark(f"{state.name}:after")
    return {"log": ["after"]}


slow = Graph(Slow, name="slow")
slow.add_node("before", before).add_node("during", during).add_node("after", after)
slow.add_edge(START, "before").add_edge("before", "during").add_edge("during", "after")
slow.add_edge("after", END)
