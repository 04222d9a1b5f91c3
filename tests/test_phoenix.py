"""A real dashboard round trip: sessions exported over OTLP/HTTP to Arize Phoenix.

The test installs Phoenix into a cached virtual environment of its own (it is far too
heavy for the dev group: ~150 packages, ~600 MB), starts it on loopback (random free
ports, a temporary working directory, telemetry off), runs an avatar session with tool
calls that exports to it, reads the trace back through Phoenix's REST API and checks the
span tree: names, parents, Phoenix's span kinds, key attributes and the failed tools'
error status. Phoenix is stopped and its working directory removed afterwards.

* The venv lives in ``$MASQUERADE_PHOENIX_VENV`` or
  ``${XDG_CACHE_HOME:-~/.cache}/masquerade/phoenix-<version>`` (cache it in CI). The first
  run installs it (a few minutes cold, seconds with a warm ``uv`` cache), with bytecode
  compiled so that later starts do not pay for it.
* The test is skipped only when Phoenix cannot be installed (no package index), with the
  installer's output in the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from masquerade import Host, Poller, SessionRequest, tool
from masquerade.builtin.tracing import Tracing

PHOENIX_VERSION = "20.26.1"
PHOENIX_SPEC = f"arize-phoenix=={PHOENIX_VERSION}"
VENV_ENV = "MASQUERADE_PHOENIX_VENV"
INSTALL_TIMEOUT = 900.0
# Phoenix imports ~150 packages and migrates a fresh SQLite database before it answers:
# 10-15 s on an idle machine, over a minute on a loaded two-core CI runner.
STARTUP_TIMEOUT = 240.0
_MARKER = "masquerade-phoenix.txt"


# ---------------------------------------------------------------------- installing
def _venv_dir() -> Path:
    configured = os.environ.get(VENV_ENV)
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "masquerade" / f"phoenix-{PHOENIX_VERSION}"


def _uv() -> list[str] | None:
    found = shutil.which("uv")
    if found:
        return [found]
    try:
        import uv  # type: ignore[import-not-found]
    except ImportError:
        return None
    return [uv.find_uv_bin()]


def _install(venv: Path) -> None:
    python = venv / "bin" / "python"
    uv = _uv()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    if uv is not None:
        steps = [
            [*uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
            # --python (not VIRTUAL_ENV) pins the target; --compile-bytecode because this
            # environment may run with PYTHONDONTWRITEBYTECODE and Phoenix's imports are
            # slow without .pyc files.
            [*uv, "pip", "install", "--quiet", "--python", str(python), "--compile-bytecode",
             PHOENIX_SPEC],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", PHOENIX_SPEC],
            [str(python), "-m", "compileall", "-q", str(venv / "lib")],
        ]
    for step in steps:
        done = subprocess.run(
            step, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"`{' '.join(step)}` failed: " + " | ".join(tail))


def ensure_phoenix() -> Path:
    """The cached venv's python with Phoenix installed (installing it on first use)."""
    venv = _venv_dir()
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        lock_file = open(venv.parent / f"{venv.name}.lock", "w")  # noqa: SIM115
    except OSError as exc:
        pytest.skip(
            f"Phoenix ({PHOENIX_SPEC}) cannot be installed in {venv} (set {VENV_ENV} to a "
            f"writable directory): {exc}"
        )
    with lock_file as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing it
        marker = venv / _MARKER
        if not (marker.exists() and marker.read_text().strip() == PHOENIX_SPEC):
            shutil.rmtree(venv, ignore_errors=True)  # a half-made or outdated venv
            try:
                _install(venv)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                shutil.rmtree(venv, ignore_errors=True)
                pytest.skip(f"Phoenix ({PHOENIX_SPEC}) cannot be installed here: {exc}")
            marker.write_text(PHOENIX_SPEC + "\n")
    return venv / "bin" / "python"


# ---------------------------------------------------------------------- running
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PhoenixServer:
    def __init__(self, python: Path, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "phoenix.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
        env.update(
            PHOENIX_HOST="127.0.0.1",
            PHOENIX_PORT=str(self.port),
            # gRPC binds every interface: a random high port keeps it out of the way.
            PHOENIX_GRPC_PORT=str(_free_port()),
            PHOENIX_WORKING_DIR=str(workdir / "data"),
            PHOENIX_TELEMETRY_ENABLED="false",
            PHOENIX_DISABLE_AGENT_ASSISTANT="true",
            PHOENIX_AGENTS_DISABLE_BASH="true",
            PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
            PHOENIX_LOG_MIGRATIONS="false",
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(python), "-m", "phoenix.server.main", "serve"],
            env=env,
            cwd=workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def wait_ready(self) -> float:
        started = time.monotonic()
        deadline = started + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"Phoenix exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise AssertionError(
            f"Phoenix was not ready after {STARTUP_TIMEOUT:.0f}s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


@pytest.fixture(scope="module")
def phoenix() -> Iterator[PhoenixServer]:
    python = ensure_phoenix()
    workdir = Path(tempfile.mkdtemp(prefix="masquerade-phoenix-"))
    server = PhoenixServer(python, workdir)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------- the session
@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number."""
    return {"order_id": order_id, "status": "shipped"}


@tool
async def cancel_order(order_id: str) -> str:
    """Cancel an order."""
    raise PermissionError(f"order {order_id} has already shipped")


SCRIPT: list[dict[str, Any]] = [
    {"say": "Hi! What is your order number?"},
    {"say": "It is A1001.", "role": "user"},
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"tool": "cancel_order", "args": {"order_id": "A1001"}},
    {"say": "It has shipped, so it cannot be cancelled."},
    {"hangup": True},
]


@contextlib.contextmanager
def provider_for_script() -> Iterator[tuple[object, str]]:
    """The Runway emulator when masquerade-runway is installed, else ScriptedProvider."""
    try:
        from masquerade_runway.emulator import RunwayEmulator
    except ImportError:
        from masquerade.testing import ScriptedProvider

        yield ScriptedProvider(SCRIPT[:-1]), "scripted"
        return
    with RunwayEmulator(script=SCRIPT, plan={"provisioning": 0.05}) as emulator:
        yield emulator.provider(), "runway"


async def _query(phoenix: PhoenixServer, project: str, **params: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{phoenix.url}/v1/projects/{project}/spans", params={"limit": 100, **params}
        )
    if response.status_code == 404:  # the project appears with its first span
        return []
    response.raise_for_status()
    return list(response.json()["data"])


@pytest.mark.anyio
async def test_phoenix_shows_the_session_trace(phoenix: PhoenixServer, anyio_backend: str) -> None:
    project = f"masquerade-{anyio_backend}-{uuid.uuid4().hex[:8]}"
    tracer_provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "masquerade-tests", "openinference.project.name": project}
        )
    )
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{phoenix.url}/v1/traces"))
    )
    with provider_for_script() as (provider, provider_name):
        host = Host(
            plugins=[Tracing(tracer_provider=tracer_provider), provider],
            load_entrypoints=False,
            environ={"MASQUERADE_DISABLE_PLUGINS": "tracing"},
            poller=Poller(initial_interval=0.02, max_interval=0.1),
        )
        with anyio.fail_after(60):
            async with host:
                result = await host.run_session(
                    SessionRequest(
                        provider=provider_name,
                        name="concierge",
                        avatar="cooking-teacher" if provider_name == "runway" else None,
                        tools=[lookup_order, cancel_order],
                    )
                )
    assert result.outcome == "completed", result.failure
    assert tracer_provider.force_flush(10_000)
    tracer_provider.shutdown()

    # Find the trace by the session's own span, then read the whole trace back.
    expected = 1 + 2 + 2  # the session, two tools, two avatar responses (or none)
    spans: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    trace_id = None
    while time.monotonic() < deadline:
        if trace_id is None:
            found = await _query(phoenix, project, name="invoke_agent concierge")
            if found:
                trace_id = found[0]["context"]["trace_id"]
        if trace_id is not None:
            spans = await _query(phoenix, project, trace_id=trace_id)
            tools = [s for s in spans if s["name"].startswith("execute_tool")]
            if len(tools) == 2 and any(s["name"].startswith("invoke_agent") for s in spans):
                break
        await anyio.sleep(0.25)
    names = sorted(s["name"] for s in spans)
    assert "invoke_agent concierge" in names, (names, phoenix.log_tail())
    assert len(spans) <= expected

    by_name = {s["name"]: s for s in spans}
    agent = by_name["invoke_agent concierge"]
    assert agent["parent_id"] is None
    assert agent["span_kind"] == "AGENT"  # Phoenix read gen_ai.operation.name itself
    assert agent["status_code"] == "UNSET"
    attrs = agent["attributes"]
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.provider.name"] == provider_name
    assert attrs["gen_ai.conversation.id"] == result.provider_session_id
    assert attrs["session.id"] == result.provider_session_id  # Phoenix's sessions view
    assert attrs["masquerade.session.outcome"] == "completed"

    agent_id = agent["context"]["span_id"]
    ok = by_name["execute_tool lookup_order"]
    failed = by_name["execute_tool cancel_order"]
    for span, status in ((ok, "OK_OR_UNSET"), (failed, "ERROR")):
        assert span["parent_id"] == agent_id
        assert span["span_kind"] == "TOOL"
        assert span["context"]["trace_id"] == trace_id
        assert span["attributes"]["gen_ai.tool.type"] == "function"
        assert span["attributes"]["tool.id"] == span["attributes"]["gen_ai.tool.call.id"]
        if status == "ERROR":
            assert span["status_code"] == "ERROR"
            assert span["attributes"]["error.type"] == "exception"
        else:
            assert span["status_code"] in ("OK", "UNSET")
            assert "error.type" not in span["attributes"]
    responses = [s for s in spans if s["name"].startswith("realtime_inference")]
    assert all(s["parent_id"] == agent_id for s in responses)
