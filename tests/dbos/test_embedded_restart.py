"""The embedded default (SQLite, one process) survives a crash and a restart."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .test_recovery_runway import CALL, check_guarantees
from .workers import HERE, EmulatorProcess, marks, wait_until, write_script


def test_a_killed_embedded_process_finishes_its_calls_when_started_again(
    tmp_path: Path,
) -> None:
    marks_file = tmp_path / "marks"
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    with EmulatorProcess(write_script(tmp_path / "call.json", CALL)) as emulator:
        env = {**os.environ, **emulator.env, "MASQUERADE_TEST_MARKS": str(marks_file)}
        args = [sys.executable, str(HERE / "embedded_app.py"), url, "2"]
        first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
        try:

            def tools_answered() -> bool:
                return Counter(marks(marks_file))["tool:1"] == 2

            wait_until(tools_answered, timeout=60)
            first.kill()
            first.wait(30)
        finally:
            if first.poll() is None:
                first.kill()
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=90)
        assert second.returncode == 0, second.stderr
        done = [line for line in second.stdout.splitlines() if line.startswith("done")]
        assert len(done) == 2
        assert all(line.endswith("before,after:completed") for line in done), second.stderr
        check_guarantees(emulator, 2)
        counts = Counter(marks(marks_file))
        assert counts["r0:before"] == counts["r1:before"] == 1
        assert counts["r0:call"] == counts["r1:call"] == 2  # re-attached after the restart
