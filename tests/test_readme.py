"""The README's promises stay true: its graph is the tested example, its code compiles,
and its test command is the one CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def test_quickstart_block_is_the_tested_example() -> None:
    example = (ROOT / "examples" / "quickstart.py").read_text()
    body = example.split("\n", 1)[1]  # without the module docstring line
    python_blocks = [code for lang, code in BLOCKS if lang == "python"]
    assert body in python_blocks
    assert len(body.strip().splitlines()) < 30


def test_every_python_block_compiles() -> None:
    for lang, code in BLOCKS:
        if lang == "python":
            compile(code, "README.md", "exec")


def test_the_two_commands_and_ci() -> None:
    commands = [code.strip() for lang, code in BLOCKS if lang == "bash"]
    demo = "python3 -m pip install uv && python3 -m uv run masquerade demo"
    test = "python3 -m pip install uv && python3 -m uv run pytest"
    assert commands[:2] == [demo, test]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m pip install" in ci and "uv" in ci
    assert "python3 -m uv run pytest" in ci
