"""``masquerade tools schema``: prints a tool's schema; clear errors for bad targets."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from masquerade.cli import main

MODULE = textwrap.dedent(
    '''
    from typing import Literal

    from masquerade import tool


    @tool(timeout=2)
    def book_slot(day: Literal["monday", "tuesday"], hour: int = 10) -> str:
        """Book a delivery slot.

        Args:
            day: Day of the week.
            hour: Hour of the day.
        """
        return f"{day} {hour}"


    @tool(kind="client_event")
    def show_map(city: str) -> None:
        """Show a map.

        :param city: The city to show.
        """


    def plain(query: str) -> str:
        """Search the catalogue.

        Parameters
        ----------
        query : str
            What to look for.
        """
        return query


    NOT_A_TOOL = 42


    class Thing:
        pass
    '''
)


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "shop_tools.py"
    path.write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MASQUERADE_PLUGINS", "")  # built-ins only: no installed plugins
    monkeypatch.delitem(sys.modules, "shop_tools", raising=False)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["tools", "schema", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_runway_dialect(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "shop_tools:book_slot", "--dialect", "runway")
    assert code == 0, err
    assert json.loads(out) == {
        "type": "backend_rpc",
        "name": "book_slot",
        "description": "Book a delivery slot.",
        "parameters": [
            {
                "name": "day",
                "type": "string",
                "description": "Day of the week.",
                "required": True,
                "enum": ["monday", "tuesday"],
            },
            {"name": "hour", "type": "integer", "description": "Hour of the day.",
             "required": False},
        ],
        "timeoutSeconds": 2.5,
    }


def test_openai_dialect_from_a_file_path(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, f"{shop}:book_slot", "--dialect", "openai")
    assert code == 0, err
    assert json.loads(out) == {
        "type": "function",
        "name": "book_slot",
        "description": "Book a delivery slot.",
        "parameters": {
            "type": "object",
            "properties": {
                "day": {
                    "type": "string",
                    "description": "Day of the week.",
                    "enum": ["monday", "tuesday"],
                },
                "hour": {"type": "integer", "description": "Hour of the day.", "default": 10},
            },
            "required": ["day"],
            "additionalProperties": False,
        },
    }


def test_plain_function_and_whole_module(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "shop_tools:plain", "--dialect", "runway")
    assert code == 0
    assert json.loads(out)["parameters"] == [
        {"name": "query", "type": "string", "description": "What to look for.", "required": True}
    ]
    code, out, _ = run(capsys, "shop_tools", "--dialect", "runway")
    assert code == 0
    schemas = json.loads(out)
    assert [s["name"] for s in schemas] == ["book_slot", "show_map"]
    assert schemas[1]["type"] == "client_event"
    assert "timeoutSeconds" not in schemas[1]


@pytest.mark.parametrize(
    ("target", "message", "hint"),
    [
        ("no_such_module_xyz:f", "no module named 'no_such_module_xyz'", "check the spelling"),
        ("missing/file.py:f", "no such file: missing/file.py", "path of a .py file"),
        ("shop_tools:nope", "shop_tools has no attribute 'nope'",
         "its tools: book_slot, show_map"),
        ("shop_tools:NOT_A_TOOL", "shop_tools:NOT_A_TOOL is a value of type int, not a tool",
         "function"),
        ("shop_tools:Thing", "shop_tools:Thing is a class, not a tool or a function", "function"),
    ],
)
def test_bad_targets(
    shop: Path, capsys: pytest.CaptureFixture[str], target: str, message: str, hint: str
) -> None:
    code, out, err = run(capsys, target)
    assert code == 1
    assert out == ""
    assert f"error: {message}" in err
    assert "hint:" in err
    assert hint in err


def test_broken_module_and_bad_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MASQUERADE_PLUGINS", "")
    broken = tmp_path / "broken.py"
    broken.write_text("import not_installed_dependency_xyz\n")
    code, _, err = run(capsys, f"{broken}:f")
    assert code == 1
    assert "No module named 'not_installed_dependency_xyz'" in err
    assert "install the missing module" in err

    bad = tmp_path / "bad_tool.py"
    bad.write_text(
        "from masquerade import tool\n\n@tool(timeout=30)\ndef slow() -> None:\n    'Slow.'\n"
    )
    code, _, err = run(capsys, f"{bad}:slow")
    assert code == 1
    assert "tool 'slow': timeout=30s is too long for a Runway backend_rpc tool" in err
    assert "hint: use timeout <= 7.5" in err


def test_unknown_dialect(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "shop_tools:book_slot", "--dialect", "smoke-signals")
    assert code == 1
    assert out == ""
    assert "'smoke-signals' dialect" in err


def test_console_script(shop: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "masquerade.cli", "tools", "schema", "shop_tools:book_slot",
         "--dialect", "runway", "--indent", "0"],
        cwd=shop.parent,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "", "MASQUERADE_PLUGINS": ""},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["timeoutSeconds"] == 2.5
