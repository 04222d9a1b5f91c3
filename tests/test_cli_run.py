"""``masquerade run FILE[:GRAPH]``: the live view, ``--json``, ``--state``, and clear errors
for bad files, bad state and failing nodes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from masquerade.cli import main

# A graph file that brings its own provider: it implements a masquerade hook, so
# `masquerade run` registers it as a plugin of the run's host.
GRAPH_FILE = '''
from pydantic import BaseModel
from masquerade import START, AvatarNode, Graph, SessionResult, hookimpl, tool
from masquerade.testing import ScriptedProvider

provider = ScriptedProvider(
    [
        {"say": "Hello! Which order?"},
        {"say": "Order 7", "role": "user"},
        {"tool": "lookup", "args": {"number": 7}},
        {"client_event": "show_order", "args": {"number": 7}},
        {"say": "It has shipped."},
    ],
    queued_polls=1,
)


@hookimpl
def masquerade_register_providers(register):
    register(provider)


@tool
def lookup(number: int) -> dict:
    """Look up an order."""
    return {"number": number, "status": "shipped"}


class State(BaseModel):
    customer: str = "Ada"
    call: SessionResult | None = None
    note: str = ""


def note(state: State) -> dict:
    if state.customer == "Mallory":
        raise PermissionError("Mallory may not open tickets")
    return {"note": f"{state.customer}: {state.call.outcome}"}


graph = Graph(State)
graph.add_node("call", AvatarNode("scripted", tools=[lookup], output_key="call",
                                  personality=lambda s: f"Help {s.customer}."))
graph.add_node("note", note)
graph.add_edge(START, "call").add_edge("call", "note")
'''


@pytest.fixture
def graph_file(tmp_path: Path) -> Path:
    path = tmp_path / "support.py"
    path.write_text(GRAPH_FILE)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_shows_the_graph_live(graph_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, str(graph_file), "--state", '{"customer": "Grace"}')

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "running support.py:graph (call, note)"
    assert "▶ call" in lines
    assert "▶ note" in lines
    assert any(line.strip() == "assistant ▸ Hello! Which order?" for line in lines)
    assert any(line.strip() == "user ▸ Order 7" for line in lines)
    assert any(line.strip() == "⚙ tool lookup(number=7)" for line in lines)
    assert any('↳ {"number": 7, "status": "shipped"}' in line for line in lines)
    assert any("client event show_order(number=7)" in line for line in lines)
    assert any("queued for capacity" in line for line in lines)
    assert "  tools      1 call(s): lookup x1" in lines
    assert "  note       Grace: completed" in lines
    # The frontend's session key is never printed.
    assert "scripted-session-key" not in out
    assert "sessionKey=…" in out


def test_run_json_prints_one_object_per_event(
    graph_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, str(graph_file), "--json")

    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "node.started"
    assert events[0]["node"] == "call"
    assert types[-1] == "graph.ended"
    assert events[-1]["state"]["note"] == "Ada: completed"
    assert events[-1]["state"]["call"]["tool_calls"][0]["output"]["status"] == "shipped"
    session_events = [e for e in events if e.get("node") == "call" and "session_id" in e]
    assert {"status", "ready", "transcript.done", "tool.call", "tool.result", "ended"} <= {
        e["type"] for e in session_events
    }
    ready = next(e for e in events if e["type"] == "ready")
    assert ready["credentials"]["secrets"]["sessionKey"] == "[redacted]"
    assert "scripted-session-key" not in out
    finished = [e for e in events if e["type"] == "node.finished"]
    assert [e["node"] for e in finished] == ["call", "note"]


def test_run_named_factory_and_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "factory.py"
    path.write_text(
        GRAPH_FILE.replace("graph = Graph(State)", "def build():\n    graph = Graph(State)")
        .replace('graph.add_node("call"', '    graph.add_node("call"')
        .replace('graph.add_node("note"', '    graph.add_node("note"')
        .replace("graph.add_edge(START", "    return graph.add_edge(START")
    )
    state = tmp_path / "state.json"
    state.write_text('{"customer": "Linus"}')

    code, out, err = run_cli(capsys, f"{path}:build", "--state", f"@{state}", "--json")

    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["state"]["note"] == "Linus: completed"


def test_failing_node_is_named_and_exits_1(
    graph_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, str(graph_file), "--state", '{"customer": "Mallory"}')

    assert code == 1
    assert "error: node 'note' failed: PermissionError: Mallory may not open tickets" in err
    assert "▶ note" in out  # the view showed the run up to the failure

    code, out, err = run_cli(
        capsys, str(graph_file), "--json", "--state", '{"customer": "Mallory"}'
    )
    last = json.loads(out.splitlines()[-1])
    assert code == 1
    assert last["type"] == "graph.error"
    assert last["node"] == "note"
    assert last["error"] == "NodeError"


@pytest.mark.parametrize(
    ("content", "target_suffix", "message"),
    [
        ("x = 1\n", "", "defines no masquerade Graph at module level"),
        (
            GRAPH_FILE + "\nother = Graph(State)\n",
            "",
            "defines several graphs (graph, other)",
        ),
        (GRAPH_FILE, ":nope", "has no 'nope' (graphs defined there: graph)"),
        (GRAPH_FILE, ":provider", "is a ScriptedProvider, not a masquerade Graph"),
        ("import not_a_module_anywhere\n", "", "importing"),
    ],
)
def test_bad_graph_files_get_clear_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    target_suffix: str,
    message: str,
) -> None:
    path = tmp_path / "bad.py"
    path.write_text(content)

    code, _, err = run_cli(capsys, f"{path}{target_suffix}")

    assert code == 1
    assert message in err
    assert "hint:" in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, str(tmp_path / "nowhere.py"))
    assert code == 1
    assert "nowhere.py does not exist" in err


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("{not json", "--state is not valid JSON"),
        ("[1, 2]", "--state must be a JSON object, got list"),
        ('{"customer": 5}', "the initial state does not fit State: customer"),
        ("@/no/such/state.json", "cannot read the state file"),
    ],
)
def test_bad_state(
    graph_file: Path, capsys: pytest.CaptureFixture[str], state: str, message: str
) -> None:
    code, out, err = run_cli(capsys, str(graph_file), "--state", state)
    assert code == 1
    assert message in err
    assert out == ""  # nothing ran


def test_invalid_graph_is_reported_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "wired.py"
    path.write_text(GRAPH_FILE + '\ngraph.add_edge("note", "notify")\n')
    code, out, err = run_cli(capsys, str(path))
    assert code == 1
    assert "the edge from 'note' names node 'notify', which was never added" in err
    assert out == ""


def test_graph_file_can_import_its_siblings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "steps.py").write_text(
        textwrap.dedent(
            """
            def shout(state):
                return {"text": state.text.upper()}
            """
        )
    )
    (tmp_path / "main_graph.py").write_text(
        textwrap.dedent(
            """
            from pydantic import BaseModel
            from masquerade import START, Graph
            from steps import shout

            class State(BaseModel):
                text: str = "hi"

            graph = Graph(State).add_node(shout).add_edge(START, "shout")
            """
        )
    )
    code, out, _ = run_cli(capsys, str(tmp_path / "main_graph.py"), "--json")
    assert code == 0
    final: dict[str, Any] = json.loads(out.splitlines()[-1])
    assert final["state"] == {"text": "HI"}
