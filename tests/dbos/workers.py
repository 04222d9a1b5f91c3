"""Worker processes for the durable-runs tests: ``masquerade worker`` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


class WorkerProcess:
    """``masquerade worker tests/dbos/graphs.py:NAME`` with short heartbeats."""

    def __init__(
        self,
        target: str,
        database_url: str,
        executor_id: str,
        *,
        env: Mapping[str, str] | None = None,
        capacity: int = 10,
        heartbeat_timeout: float = 3.0,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.executor_id = executor_id
        self.args = [
            sys.executable, "-m", "masquerade.cli", "worker", str(HERE / target),
            "--database-url", database_url, "--executor-id", executor_id,
            "--capacity", str(capacity), "--heartbeat-timeout", str(heartbeat_timeout),
            "--poll-interval", "0.05", "--drain-timeout", "20", *extra,
        ]  # fmt: skip
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._ready = threading.Event()

    def spawn(self) -> WorkerProcess:
        """Start the process; :meth:`wait_ready` waits until it works the queue."""
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._ready = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line.rstrip())
                if line.startswith(f"worker {self.executor_id} runs"):
                    self._ready.set()
            self._ready.set()

        threading.Thread(target=read, daemon=True).start()
        return self

    def wait_ready(self, timeout: float = 60.0) -> WorkerProcess:
        assert self.process is not None
        if not self._ready.wait(timeout) or self.process.poll() is not None:
            self.stop()
            raise AssertionError("the worker did not start:\n" + "\n".join(self.output))
        return self

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        return self.spawn().wait_ready(timeout)

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def log(self) -> str:
        return "\n".join(self.output)

    def logged(self, text: str, timeout: float = 30.0) -> bool:
        """Whether the worker printed ``text`` (its output is read by a thread: wait)."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)


def marks(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


class EmulatorProcess:
    """``masquerade emulate PROVIDER`` out of process (Runway: with its inventory)."""

    def __init__(self, script: Path | None, provider: str = "runway") -> None:
        self.api_key = "emu_test_key"
        self.provider = provider
        self.args = [
            sys.executable, "-m", "masquerade.cli", "emulate", provider, "--port", "0",
            "--api-key", self.api_key, *(("--script", str(script)) if script else ()),
        ]  # fmt: skip
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> EmulatorProcess:
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if " listening on " in line:
                self.url = line.rsplit(" ", 1)[-1].strip()
                break
        if not self.url:
            raise AssertionError("the emulator did not start")
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    @property
    def env(self) -> dict[str, str]:
        if self.provider == "openai":
            return {"OPENAI_BASE_URL": self.url, "OPENAI_API_KEY": self.api_key}
        return {"RUNWAYML_BASE_URL": self.url, "RUNWAYML_API_SECRET": self.api_key}

    def sessions(self) -> list[dict[str, Any]]:
        import httpx

        reply = httpx.get(f"{self.url}/_emulator/sessions", timeout=10)
        reply.raise_for_status()
        return list(reply.json()["sessions"])


def write_script(path: Path, steps: list[dict[str, Any]], **plan: Any) -> Path:
    path.write_text(json.dumps({"steps": steps, "plan": plan}))
    return path


def start_all(*workers: WorkerProcess) -> None:
    """Start workers side by side (each takes a second or two to import and launch)."""
    for worker in workers:
        worker.spawn()
    for worker in workers:
        worker.wait_ready()
