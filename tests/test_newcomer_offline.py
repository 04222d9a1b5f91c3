"""Every offline path plays a complete call (greeting, a tool call, goodbye, hang-up) and
ends on its own; every session shows its deadline (issue 18)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from .newcomer_helpers import EXAMPLES, emulator, masquerade

QUICKSTART = str(EXAMPLES / "quickstart.py")

OPENAI_GRAPH = """
from pydantic import BaseModel
from masquerade import END, START, AvatarNode, Graph, SessionResult, tool


@tool
def lookup_order(order_id: str) -> dict:
    \"\"\"Look up an order by its number.\"\"\"
    return {"order_id": order_id, "status": "shipped"}


class State(BaseModel):
    call: SessionResult | None = None


graph = Graph(State).add_node(
    "call", AvatarNode("openai", tools=[lookup_order], output_key="call", personality="Help.")
)
graph.add_edge(START, "call").add_edge("call", END)
"""


def assert_complete_call(out: str, greeting: str) -> None:
    assert "● call running · deadline 300s (max_duration)" in out
    assert f"assistant ▸ {greeting}" in out
    assert '⚙ tool lookup_order(order_id="A1001")' in out
    assert '↳ {"order_id": "A1001", "status": "shipped"}' in out
    assert "Goodbye!" in out
    assert "● ended: completed (completed)" in out
    assert "✓ call" in out
    assert "tools      1 call(s): lookup_order x1" in out


def test_an_openai_graph_without_a_key_plays_a_complete_call(tmp_path: Path) -> None:
    graph = tmp_path / "voice.py"
    graph.write_text(textwrap.dedent(OPENAI_GRAPH))

    done = masquerade("run", str(graph))

    assert done.returncode == 0, done.stderr
    assert "openai: OPENAI_API_KEY is not set: running its emulator in-process" in done.stdout
    assert_complete_call(done.stdout, "Hi! I'm an emulated voice agent")


def test_the_quickstart_without_a_key_plays_a_complete_call() -> None:
    done = masquerade("run", QUICKSTART)

    assert done.returncode == 0, done.stderr
    assert_complete_call(done.stdout, "Hi! I'm an emulated avatar")
    assert "summary    completed, 1 tool call(s)" in done.stdout


def test_emulate_runway_then_run_the_quickstart_as_the_testing_guide_says() -> None:
    with emulator("runway") as runway:
        done = masquerade("run", QUICKSTART, env=runway.env())
        sessions = runway.sessions()

    assert done.returncode == 0, done.stderr
    assert "emulator in-process" not in done.stdout  # the key is set: the process is used
    assert_complete_call(done.stdout, "Hi! I'm an emulated avatar")
    (session,) = sessions
    assert (session["status"], session["endedBy"]) == ("COMPLETED", "user")  # it hung up
    assert [call["name"] for call in session["toolCalls"]] == ["lookup_order"]


def test_emulate_openai_then_run_a_voice_graph(tmp_path: Path) -> None:
    graph = tmp_path / "voice.py"
    graph.write_text(textwrap.dedent(OPENAI_GRAPH))
    with emulator("openai") as openai:
        done = masquerade("run", str(graph), env=openai.env())

    assert done.returncode == 0, done.stderr
    assert "emulator in-process" not in done.stdout
    assert_complete_call(done.stdout, "Hi! I'm an emulated voice agent")
