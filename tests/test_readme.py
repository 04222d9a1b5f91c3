"""The README's promises stay true: its graph is the tested example, its code compiles,
and its test command is the one CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .newcomer_helpers import clean_env, closed_port, emulator

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


def _session_block() -> str:
    section = README.split("## What a session looks like", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


def _run_block(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "session.py"
    script.write_text(_session_block())
    return subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )


def test_the_session_block_runs_as_shown_against_the_emulator(tmp_path: Path) -> None:
    with emulator("runway") as runway:
        done = _run_block(tmp_path, runway.env())
        sessions = runway.sessions()

    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "hand these to your frontend: ['expiresAt', 'sessionId', 'sessionKey']"
    assert out[1].startswith("assistant: Hi! I'm an emulated avatar")
    assert "assistant: Done. Pass --script FILE to play your own conversation. Goodbye!" in out
    assert out[-1] == "completed ['lookup_order']"
    assert [s["status"] for s in sessions] == ["COMPLETED"]


def test_the_session_block_says_why_a_session_failed(tmp_path: Path) -> None:
    done = _run_block(tmp_path, clean_env())

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["failed []", "why: no Runway API key was given"]

    offline = clean_env(
        RUNWAYML_API_SECRET="key_" + "0" * 64, RUNWAYML_BASE_URL=f"http://127.0.0.1:{closed_port()}"
    )
    done = _run_block(tmp_path, offline)
    assert done.stdout.splitlines()[0] == "failed []"
    assert done.stdout.splitlines()[1].startswith("why: could not connect to Runway at")
