"""The ``masquerade`` command: plugins listing and the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from masquerade.cli import main

from .plugin_dist import install_distribution


def test_plugins_table_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["NAME", "STATUS", "SOURCE", "VERSION"]
    for name in ("providers", "tools", "toolschema", "logging"):
        assert any(line.startswith(name) and "loaded" in line for line in out.splitlines())


def test_plugins_json_shows_a_failed_plugin_and_keeps_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_distribution(
        tmp_path, monkeypatch, {"bad": "raise RuntimeError('boom at import')\n"}, {"bad": "bad"}
    )
    monkeypatch.delenv("MASQUERADE_PLUGINS", raising=False)
    assert main(["plugins", "--json"]) == 0
    data = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert data["bad"]["status"] == "failed"
    assert "boom at import" in data["bad"]["error"]
    assert data["logging"]["status"] == "loaded"
    assert main(["plugins"]) == 0
    assert "bad failed: RuntimeError: boom at import" in capsys.readouterr().out


def test_demo_runs_end_to_end_in_a_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "masquerade.cli", "demo", "--delay", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ready" in out
    assert "tool lookup_order" in out
    assert "outcome    completed" in out
    assert "sessionKey=…" in out or "sessionKey" not in out  # never the key itself


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "plugins" in capsys.readouterr().out
