"""A newcomer's first hour (issue 18), through the real ``masquerade`` command in a
subprocess: exit codes and the text a person reads."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .newcomer_helpers import (
    EXAMPLES,
    MASQUERADE,
    ROOT,
    TIMEOUT,
    clean_env,
    closed_port,
    masquerade,
    runway_emulator,
)

QUICKSTART = str(EXAMPLES / "quickstart.py")

# A conversation that goes on for a minute unless something ends it.
LONG_SCRIPT = [{"say": "Hello, I will wait here."}, {"wait": 60}, {"hangup": True}]

GRAPH_HEAD = """
from pydantic import BaseModel
from masquerade import END, START, AvatarNode, Graph, SessionResult


class State(BaseModel):
    customer: str = "Ada"
    call: SessionResult | None = None
    total: int = 0
"""


def write(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(GRAPH_HEAD) + textwrap.dedent(body))
    return str(path)


# ------------------------------------------------------------ failures never look like success
def test_a_failed_call_is_marked_failed_and_the_next_node_does_not_run() -> None:
    done = masquerade("run", QUICKSTART, "--online")  # no key: the call fails

    assert done.returncode == 1
    assert "✗ call failed: the runway call failed: no Runway API key was given" in done.stdout
    assert "✓ call" not in done.stdout
    assert "▶ summarize" not in done.stdout
    assert "error: node 'call' failed: CallFailed" in done.stderr
    assert "RUNWAYML_API_SECRET" in done.stderr  # the provider's advice is kept
    assert "continue_on_failure=True" in done.stderr


def test_a_node_may_continue_after_a_failed_call(tmp_path: Path) -> None:
    graph = write(
        tmp_path,
        "continues.py",
        """
        def after(state: State) -> dict:
            return {"total": 1}

        node = AvatarNode("runway", "human-resource", output_key="call", continue_on_failure=True)
        graph = Graph(State).add_node("call", node).add_node("after", after)
        graph.add_edge(START, "call").add_edge("call", "after").add_edge("after", END)
        """,
    )
    done = masquerade("run", graph, "--online")

    assert done.returncode == 1  # the run finished, but a session in its state failed
    assert "✗ call " in done.stdout and "(call failed: call; the graph continues)" in done.stdout
    assert "✓ after" in done.stdout
    assert "outcome    failed — no Runway API key was given" in done.stdout
    assert "error: the call in 'call' failed: no Runway API key was given" in done.stderr


def test_a_fake_key_without_network_says_runway_could_not_be_reached() -> None:
    env = clean_env(
        RUNWAYML_API_SECRET="key_" + "f" * 64,
        RUNWAYML_BASE_URL=f"http://127.0.0.1:{closed_port()}",
    )
    for args in (("run", QUICKSTART), ("demo", "--pace", "0")):
        done = masquerade(*args, env=env)

        assert done.returncode == 1, args
        assert "✓" not in done.stdout, args
        assert "could not reach Runway" in done.stdout, args
        assert "error: node " in done.stderr and "could not reach Runway" in done.stderr, args
        assert "--offline" in done.stderr, args  # how to run without the network
        assert "f" * 64 not in done.stdout + done.stderr


def test_an_unknown_state_key_is_an_error_with_a_suggestion() -> None:
    done = masquerade("run", QUICKSTART, "--state", '{"custmer": "Bob"}')

    assert done.returncode == 1
    assert "unknown key 'custmer'; did you mean 'customer'?" in done.stderr
    assert done.stdout == ""  # it fails before any emulator or session starts


def test_a_node_that_raises_shows_its_traceback_trimmed_to_user_frames(tmp_path: Path) -> None:
    graph = write(
        tmp_path,
        "raises.py",
        """
        def divide(x: int) -> int:
            return 10 // x

        def compute(state: State) -> dict:
            return {"total": divide(0)}

        graph = Graph(State).add_node("compute", compute)
        graph.add_edge(START, "compute").add_edge("compute", END)
        """,
    )
    done = masquerade("run", graph)

    assert done.returncode == 1
    assert "✗ compute failed: ZeroDivisionError: integer division or modulo by zero" in done.stdout
    err = done.stderr
    assert "Traceback of node 'compute' (your code only" in err
    assert f'File "{graph}", line' in err and "in compute" in err and "in divide" in err
    assert "masquerade/graph" not in err and "anyio" not in err
    assert "ZeroDivisionError: integer division or modulo by zero" in err
    assert "chained exception" not in err

    full = masquerade("run", graph, "--log-level", "DEBUG")
    assert "masquerade/graph/_engine.py" in full.stderr  # every frame on request


def test_a_mistyped_provider_suggests_the_registered_name(tmp_path: Path) -> None:
    graph = write(
        tmp_path,
        "typo.py",
        """
        graph = Graph(State).add_node("call", AvatarNode("runwayy", output_key="call"))
        graph.add_edge(START, "call").add_edge("call", END)
        """,
    )
    done = masquerade("run", graph)

    assert done.returncode == 1
    assert "no provider named 'runwayy' is registered" in done.stderr
    assert "did you mean 'runway'?" in done.stderr
    assert "pip install" not in done.stderr


def test_a_disabled_plugin_says_it_is_disabled_and_by_which_setting() -> None:
    env = clean_env(MASQUERADE_DISABLE_PLUGINS="runway")
    done = masquerade("run", QUICKSTART, "--online", env=env)

    assert done.returncode == 1
    assert "provider 'runway' is disabled" in done.stderr
    assert "MASQUERADE_DISABLE_PLUGINS=runway" in done.stderr
    assert "pip install" not in done.stderr

    only = masquerade("run", QUICKSTART, "--online", env=clean_env(MASQUERADE_PLUGINS="openai"))
    assert "MASQUERADE_PLUGINS=openai (it is not listed there)" in only.stderr


# ------------------------------------------------------------ rough edges
def test_tools_schema_help_lists_the_common_options() -> None:
    done = masquerade("tools", "schema", "--help")

    assert done.returncode == 0
    for option in ("--log-level", "--log-json", "--trace"):
        assert option in done.stdout


def _shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f'{command}; echo "status=${{PIPESTATUS[0]}}" >&2'],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_a_closed_stdout_ends_the_command_quietly() -> None:
    env = clean_env()
    for command in (
        f"{MASQUERADE} demo --pace 0 | head -2",
        f"{MASQUERADE} run {QUICKSTART} --json | head -2",
    ):
        done = _shell(command, env)

        assert len(done.stdout.splitlines()) == 2, command
        status = done.stderr.strip().splitlines()[-1]
        assert status in ("status=0", "status=141"), (command, done.stderr)
        assert done.stderr.strip() == status, (command, done.stderr)  # nothing else


#: Runs ``argv[1:]`` with SIGINT at its default (exec keeps a default disposition).
DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


@contextmanager
def _long_online_run(tmp_path: Path, until: str) -> Iterator[tuple[Any, subprocess.Popen[str]]]:
    """``masquerade run quickstart --online`` against an emulator whose call goes on for a
    minute; yields once the command printed a line with ``until``."""
    script = tmp_path / "long.json"
    script.write_text(json.dumps(LONG_SCRIPT))
    with runway_emulator("--script", str(script)) as emulator:
        process = subprocess.Popen(
            # Ctrl-C as in a terminal: a test run started in the background (CI, nohup)
            # passes SIGINT on ignored, and Python then keeps ignoring it.
            [sys.executable, "-c", DEFAULT_SIGINT, MASQUERADE, "run", QUICKSTART, "--online"],
            env=emulator.env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None
        for line in process.stdout:
            if until in line:
                break
        yield emulator, process


def test_a_closed_stdout_ends_the_running_session_through_its_cancel_path(
    tmp_path: Path,
) -> None:
    with _long_online_run(tmp_path, "● provisioning") as (emulator, process):
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader goes away while the session provisions
        err = process.stderr.read()
        code = process.wait(timeout=TIMEOUT)

        assert code in (0, 141), err
        assert "Traceback" not in err and "ExceptionGroup" not in err
        sessions = emulator.sessions()
    assert len(sessions) == 1
    assert sessions[0]["status"] not in ("NOT_READY", "READY", "RUNNING")
    # Ended by us (DELETE, or END_CALL when the command got as far as the running call
    # before it wrote into the closed pipe), not by the script.
    ended_by = sessions[0]["endedBy"]
    assert ended_by == "api" or ended_by.startswith("backend:"), ended_by


def test_ctrl_c_says_which_sessions_were_ended_through_their_cancel_path(
    tmp_path: Path,
) -> None:
    with _long_online_run(tmp_path, "● call running") as (emulator, process):
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=TIMEOUT)
        sessions = emulator.sessions()

    assert process.returncode == 130
    assert "interrupted; 1 session(s) ended:" in err
    (session,) = sessions
    assert f"provider id {session['id']}) was ended through its cancel path" in err
    assert "cancel path: cancelled (cancelled)" in err
    # Ended by us: DELETE (CANCELLED), or END_CALL over the room (COMPLETED) when the room
    # was still joined as the cancel path ran; never by the script, which waits a minute.
    ended = (session["status"], session["endedBy"])
    assert ended == ("CANCELLED", "api") or (
        ended[0] == "COMPLETED" and str(ended[1]).startswith("backend:")
    ), ended


def test_the_phoenix_test_skips_with_a_reason_when_it_cannot_install(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = clean_env(MASQUERADE_PHOENIX_VENV=str(blocker / "phoenix"))
    done = subprocess.run(
        [str(Path(MASQUERADE).parent / "python"), "-m", "pytest", "-q", "-rs",
         "-p", "no:cacheprovider", "tests/test_phoenix.py"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped" in done.stdout and "failed" not in done.stdout
    assert "cannot be installed in" in done.stdout
    assert "set MASQUERADE_PHOENIX_VENV to a writable directory" in done.stdout
