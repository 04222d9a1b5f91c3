"""The plugin README's session snippet runs as written and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "plugins" / "masquerade-runway" / "README.md"


def test_readme_snippet_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README has a python snippet"
    exec(compile(blocks[0], str(README), "exec"), {"__name__": "readme"})  # runs anyio.run
    out = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert "status NOT_READY" in out  # queued first
    assert "ready" in out
    assert "tool.call" in out
    assert "tool.result" in out
    assert "completed" in out
    assert "assistant Hi! What is your order number?" in out
    assert any(line.startswith("assistant [{") and "lookup_order" in line for line in out)
