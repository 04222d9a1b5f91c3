"""Drive the real ``masquerade`` command in a subprocess, as a newcomer would."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MASQUERADE = str(Path(sys.executable).parent / "masquerade")
#: Generous bounds: a hung command fails the test instead of hanging the suite.
TIMEOUT = 120

KEYS = ("RUNWAYML_API_SECRET", "RUNWAYML_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user with no API keys and no plugin settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in KEYS and not k.startswith(("MASQUERADE_", "OTEL_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def masquerade(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MASQUERADE, *args],
        env=clean_env() if env is None else env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def closed_port() -> int:
    """A loopback port nothing listens on (connecting there is refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmulatorProcess:
    process: subprocess.Popen[str]
    base_url: str
    api_key: str
    name: str = "runway"

    def env(self, **extra: str) -> dict[str, str]:
        """What docs/guides/testing.md tells users to export."""
        if self.name == "openai":
            return clean_env(OPENAI_BASE_URL=self.base_url, OPENAI_API_KEY=self.api_key, **extra)
        return clean_env(
            RUNWAYML_BASE_URL=self.base_url, RUNWAYML_API_SECRET=self.api_key, **extra
        )

    def sessions(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.base_url}/_emulator/sessions", timeout=10) as r:
            return list(json.load(r)["sessions"])


@contextmanager
def emulator(name: str, *args: str) -> Iterator[EmulatorProcess]:
    """``masquerade emulate NAME [ARGS]`` in a subprocess, until the block ends."""
    process = subprocess.Popen(
        [MASQUERADE, "emulate", name, *args],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        second = process.stdout.readline()
        assert "listening on" in first, (first, process.stderr.read() if process.stderr else "")
        base_url = first.rsplit(" ", 1)[1].strip()
        api_key = second.split(":", 1)[1].strip()
        yield EmulatorProcess(process, base_url, api_key, name)
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def runway_emulator(*args: str) -> Any:
    return emulator("runway", *args)
