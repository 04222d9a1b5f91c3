"""docs/first-hour.md, executed: every ``$`` command of the page runs, in order, in one
shell, in a fresh directory holding a copy of the repository, exactly as written. Files
the page shows (``title="..."`` blocks) are written first. Each command's exit status
and output are checked against the table below; a command on the page that the table
does not know (or the other way round) fails the test, so the page cannot drift.

Two commands cannot run as a reader runs them here: the real Runway key is replaced by a
fake one with ``RUNWAYML_BASE_URL`` pointing at a closed loopback port (no network: the
page's offline fallback is what is tested), and the trace endpoint is a loopback OTLP
receiver instead of Phoenix. ``masquerade demo`` runs with a short ``--pace``: its default
pace only spaces the steps out for a human eye (about 14 s of sleeping).

Building wheels and installing them (with their dependencies from the package index)
into a fresh ``python3 -m venv`` is what CI checks of the install instructions.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from .newcomer_helpers import KEYS, ROOT, closed_port
from .otlp_receiver import OtlpReceiver

PAGE = ROOT / "docs" / "first-hour.md"
FAKE_KEY = "key_" + "9" * 64

#: command (as on the page) -> (exit status, texts its output must contain)
EXPECTED: dict[str, tuple[int, tuple[str, ...]]] = {
    "cd masquerade": (0, ()),
    "python3 -m pip install uv": (0, ()),
    "python3 -m uv build --all-packages --wheel --out-dir ../wheels": (
        0,
        ("masquerade-0.1.0-py3-none-any.whl", "masquerade_runway-0.1.0-py3-none-any.whl"),
    ),
    "cd ..": (0, ()),
    "python3 -m venv app": (0, ()),
    ". app/bin/activate": (0, ()),
    'pip install "wheels/masquerade-0.1.0-py3-none-any.whl[otel]" '
    "wheels/masquerade_runway-0.1.0-py3-none-any.whl "
    "wheels/masquerade_openai-0.1.0-py3-none-any.whl": (0, ("Successfully installed",)),
    "masquerade plugins": (0, ("providers: openai, runway",)),
    "masquerade demo": (0, ("● ended: completed", "⚙ tool lookup_order")),
    "masquerade tools schema my_tools.py:lookup_order --dialect runway": (
        0,
        ('"type": "backend_rpc"', '"name": "order_id"'),
    ),
    """masquerade run my_graph.py --state '{"customer": "Grace"}'""": (
        0,
        (
            "deadline 300s (max_duration)",
            '⚙ tool lookup_order(order_id="A1001")',
            "● ended: completed",
            "Grace: completed, 1 tool call(s)",
        ),
    ),
    "export RUNWAYML_API_SECRET=key_...": (0, ()),
    "masquerade run my_graph.py": (
        1,
        ("✗ call failed: could not reach Runway", "hint:", "--offline"),
    ),
    "masquerade run my_graph.py --offline": (0, ("Ada: completed, 1 tool call(s)",)),
    "export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:6006": (0, ()),
    "masquerade run my_graph.py --offline --trace": (0, ("Ada: completed, 1 tool call(s)",)),
}


def page_commands() -> list[str]:
    text = PAGE.read_text()
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    return [line[2:].strip() for line in lines if line.startswith("$ ")]


def page_files() -> dict[str, str]:
    text = PAGE.read_text()
    return dict(re.findall(r'```python title="([^"]+)"\n(.*?)```', text, flags=re.S))


def copy_repository(into: Path) -> None:
    skip = shutil.ignore_patterns(
        ".git", ".venv", "site", "dist", "__pycache__", ".mypy_cache", ".ruff_cache",
        ".pytest_cache", ".masquerade", "*.egg-info",
    )
    shutil.copytree(ROOT, into, ignore=skip, symlinks=True)


def user_environment() -> dict[str, str]:
    """A shell like a reader's: no virtual environment active, no keys, no settings."""
    venv_bin = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in KEYS
        and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
        and not k.startswith(("MASQUERADE_", "OTEL_", "UV_PROJECT", "PYTEST_"))
    }
    env["PATH"] = os.pathsep.join(path)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_every_command_of_the_page_is_known_to_this_test() -> None:
    assert page_commands() == list(EXPECTED)
    assert set(page_files()) == {"my_tools.py", "my_graph.py"}


def test_the_first_hour_walkthrough_runs_as_written(tmp_path: Path) -> None:
    commands = page_commands()
    assert commands == list(EXPECTED)
    copy_repository(tmp_path / "masquerade")
    for name, body in page_files().items():
        (tmp_path / name).write_text(body)
    work = tmp_path / "out"
    work.mkdir()

    with OtlpReceiver() as receiver:
        substitutes = {
            # No network here: a fake key and a base URL where nothing listens.
            "export RUNWAYML_API_SECRET=key_...": f"export RUNWAYML_API_SECRET={FAKE_KEY} "
            f"RUNWAYML_BASE_URL=http://127.0.0.1:{closed_port()}",
            "export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:6006": (
                f"export OTEL_EXPORTER_OTLP_ENDPOINT={receiver.endpoint}"
            ),
            "masquerade demo": "masquerade demo --pace 0.05",
        }
        lines = ["set +e"]
        for i, command in enumerate(commands):
            run = substitutes.get(command, command)
            lines.append(f"{run} > {work}/{i}.out 2>&1")
            lines.append(f"echo $? > {work}/{i}.status")
        done = subprocess.run(
            ["bash", "-c", "\n".join(lines)],
            cwd=tmp_path,
            env=user_environment(),
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        spans = {span.name for span in receiver.spans}

    for i, command in enumerate(commands):
        status = int((work / f"{i}.status").read_text())
        output = (work / f"{i}.out").read_text()
        expected_status, texts = EXPECTED[command]
        assert status == expected_status, f"$ {command}\n{output[-3000:]}"
        for text in texts:
            assert text in output, f"$ {command}: {text!r} missing\n{output[-3000:]}"
        assert FAKE_KEY not in output
    installed = tmp_path / "app" / "bin" / "masquerade"
    assert installed.exists()  # the command came from the fresh venv, not the workspace
    assert "invoke_workflow" in " ".join(spans) and "execute_tool lookup_order" in spans


def test_shlex_reads_every_command() -> None:
    for command in page_commands():
        shlex.split(command)  # a quoting mistake on the page fails here, quickly


def test_no_doc_installs_a_package_from_an_index_that_does_not_have_it() -> None:
    # masquerade and its plugins are installed from wheels built here, never by name.
    by_name = re.compile(
        r"""(pip|uv) (pip )?(install|add)\s+(-\S+\s+)*['"]?"""
        r"""masquerade([-_][a-z]+)?(\[\w+\])?['"]?(\s|$)"""
    )
    files = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("examples/**/*.md"),
             *ROOT.glob("plugins/*/README.md"), *ROOT.glob("examples/**/*.py"),
             *ROOT.glob("src/**/*.py"), *ROOT.glob("plugins/*/src/**/*.py")]
    found = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in files
        for line in path.read_text().splitlines()
        if by_name.search(line)
    ]
    assert found == []
