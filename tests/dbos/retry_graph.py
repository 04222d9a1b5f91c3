"""A graph whose node fails its first attempt, with a retry policy (durable retry tests)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from masquerade import END, START, Graph, RetryPolicy
from masquerade_dbos import current_execution


class Flaky(BaseModel):
    name: str = "run"
    result: str = ""


def _mark(text: str) -> None:
    marks = os.environ.get("MASQUERADE_TEST_MARKS")
    if marks:
        with Path(marks).open("a") as out:
            out.write(f"{text}\n")


async def shaky(state: Flaky) -> dict[str, str]:
    execution = current_execution()
    attempt = execution.attempt if execution is not None else 0
    _mark(f"{state.name}:attempt:{attempt}")
    if attempt == 1:
        raise ConnectionError("the line dropped")
    return {"result": f"attempt {attempt}"}


backoff = float(os.environ.get("MASQUERADE_TEST_BACKOFF", "0.05"))
graph = Graph(Flaky, name="retrying").add_node(
    "shaky", shaky, retry=RetryPolicy(max_attempts=3, backoff=backoff)
)
graph.add_edge(START, "shaky").add_edge("shaky", END)
