"""The Runway examples, run the way their docstrings say, against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from masquerade.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "runway_own_agent.py"


def test_own_agent_example_runs_offline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    monkeypatch.delenv("RUNWAYML_BASE_URL", raising=False)
    assert main(["run", str(EXAMPLE), "--json"]) == 0
    out = capsys.readouterr().out
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    final = events[-1]
    assert final["type"] == "graph.ended"
    assert final["state"]["call"]["outcome"] == "completed"
    assert final["state"]["summary"].startswith("completed after")
    assert "token-for-the-avatar-worker" not in out  # the room token is a secret


def test_own_agent_example_prints_where_the_frontend_joins(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    monkeypatch.setenv("LIVEKIT_ROOM", "room-7")
    assert main(["run", str(EXAMPLE)]) == 0
    assert "the frontend joins your room: room-7" in capsys.readouterr().out
