"""Secret canaries: fake keys set for the whole test must never come out anywhere.

The canaries are set as the environment's API keys (and registered, as providers do when
they read a key), then pushed through every path masquerade writes to: log records at
DEBUG (text and JSON), spans with content capture on, exported OTLP, reprs, exception
messages, the CLI's output, and every example in ``examples/`` (run against emulators
that accept the canary as their key, so it really travels in the Authorization headers).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from masquerade import (
    JsonFormatter,
    RedactingFilter,
    SessionRequest,
    ToolContext,
    configure_logging,
    register_secret,
    tool,
)
from masquerade.events import BaseEvent
from masquerade.testing import ScriptedProvider

from .otel_helpers import NO_BUILTIN_TRACING, Otel, every_string
from .otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[1]
RUNWAY_CANARY = "key_" + secrets.token_hex(32)
OPENAI_CANARY = "sk-proj-" + secrets.token_hex(24)
PLAIN_CANARY = "canary-" + secrets.token_hex(12)  # no credential shape: registered only
CANARIES = (RUNWAY_CANARY, OPENAI_CANARY, PLAIN_CANARY)


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RUNWAYML_API_SECRET", RUNWAY_CANARY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_CANARY)
    monkeypatch.setenv("LIVEKIT_API_SECRET", PLAIN_CANARY)
    monkeypatch.setenv("MASQUERADE_CAPTURE_CONTENT", "1")  # the worst case
    for value in CANARIES:
        register_secret(value)  # what a provider does with a key it reads
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def assert_clean(where: str, text: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"a canary leaked into {where}"


@tool
def fetch_profile(ctx: ToolContext, user: str) -> str:
    """Fetch a profile from the CRM."""
    key = os.environ["RUNWAYML_API_SECRET"]
    ctx.logger.info("calling the CRM for %s with key %s", user, key)
    logging.getLogger("httpx").debug("HTTP Request: GET https://crm/v1?key=%s", PLAIN_CANARY)
    raise RuntimeError(
        f"GET https://crm.example/v1/users?api_key={PLAIN_CANARY} -> 401 "
        f"(Authorization: Bearer {os.environ['OPENAI_API_KEY']})"
    )


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order."""
    return f"order {order_id} shipped"


@pytest.mark.anyio
async def test_canaries_never_leave_a_session(canaries: None, make_host: Any) -> None:
    text_logs, json_logs = io.StringIO(), io.StringIO()
    configure_logging("DEBUG", stream=text_logs)
    json_handler = logging.StreamHandler(json_logs)
    json_handler.setFormatter(JsonFormatter())
    json_handler.addFilter(RedactingFilter())
    logging.getLogger().addHandler(json_handler)
    otel = Otel()
    events: list[BaseEvent] = []
    provider = ScriptedProvider(
        [
            {"say": "Hello, let me check."},
            {"tool": "fetch_profile", "args": {"user": "ada"}},
            {"tool": "lookup_order", "args": {"order_id": "42"}},
            {"client_event": "show", "args": {"order": "42"}},
            {"fail": f"websocket closed: wss://x/rtc?access_token={PLAIN_CANARY} "
                     f"Authorization: Bearer {RUNWAY_CANARY}", "code": "ws_closed"},
        ],
        queued_polls=1,
    )
    host = make_host(otel.plugin(), provider, environ=NO_BUILTIN_TRACING)
    async with host, host.session(
        SessionRequest(provider="scripted", tools=[fetch_profile, lookup_order]),
        on_event=events.append,
    ) as session:
        result = await session.wait()
    otel.shutdown()
    assert result.outcome == "failed"
    assert result.tool_calls[0].error_type == "exception"

    session_key = f"scripted-session-key-{provider.sessions[0].id}"  # a SecretStr, never shown
    logs = text_logs.getvalue() + json_logs.getvalue()
    assert "calling the CRM for ada with key [redacted]" in logs  # the paths were exercised
    assert "api_key=[redacted]" in logs
    assert_clean("logs", logs)
    assert session_key not in logs
    span_text = "\n".join(t for span in otel.spans() for t in every_string(span))
    assert "order 42 shipped" in span_text  # content capture really was on
    assert_clean("spans", span_text)
    assert session_key not in span_text
    reprs = "\n".join(
        [repr(session), repr(result), repr(host), result.model_dump_json(), str(result.failure),
         str(result.error), *map(repr, events), *(e.model_dump_json() for e in events)]
    )
    assert_clean("reprs", reprs)
    assert session_key not in reprs


def run_command(argv: list[str], env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{output[-3000:]}"
    return output


def base_env(receiver: OtlpReceiver) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        RUNWAYML_API_SECRET=RUNWAY_CANARY,
        OPENAI_API_KEY=OPENAI_CANARY,
        LIVEKIT_API_SECRET=PLAIN_CANARY,
        MASQUERADE_CAPTURE_CONTENT="1",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_METRICS_EXPORTER="otlp",
    )
    return env


def test_canaries_never_reach_cli_output(canaries: None) -> None:
    cli = [sys.executable, "-m", "masquerade.cli", "--log-level", "DEBUG"]
    with OtlpReceiver() as receiver:
        env = base_env(receiver)
        commands = [
            [*cli, "--log-json", "demo", "--offline", "--json", "--pace", "0", "--trace"],
            [*cli, "demo", "--offline", "--pace", "0"],
            [*cli, "plugins", "--json"],
            [*cli, "plugins"],
        ]
        with ThreadPoolExecutor(2) as pool:
            outputs = list(pool.map(lambda argv: run_command(argv, env), commands))
    assert receiver.spans, "the demo exported no spans"
    for output in outputs:
        assert_clean("CLI output", output)
    for body in receiver.raw_bodies:
        for canary in CANARIES:
            assert canary.encode() not in body


def _examples() -> list[Path]:
    found = []
    for path in sorted((ROOT / "examples").rglob("*.py")):
        if path.name.startswith("_"):
            continue
        if any((parent / "pyproject.toml").exists() for parent in path.parents
               if parent != ROOT and ROOT in parent.parents):
            continue  # an installable plugin package, not a runnable example
        found.append(path)
    return found


def _command(path: Path) -> list[str]:
    source = path.read_text()
    if 'if __name__ == "__main__"' in source:
        # A web app serves until stopped; its --check makes one call through its routes.
        return [sys.executable, str(path), *(["--check"] if '"--check"' in source else [])]
    # A graph file: what its docstring says to do with it.
    return [sys.executable, "-m", "masquerade.cli", "--log-level", "DEBUG", "--log-json",
            "run", "--online", "--trace", str(path)]


@contextlib.contextmanager
def emulators_accepting_the_canaries(env: dict[str, str]) -> Iterator[None]:
    """Runway and OpenAI emulators whose only valid keys are the canaries: the examples
    run "online" against them, so the canaries travel in real Authorization headers."""
    with contextlib.ExitStack() as stack:
        try:
            from masquerade_runway.emulator import RunwayEmulator
        except ImportError:
            pass
        else:
            script: list[dict[str, Any]] = [
                {"say": "Hello! Which order?"},
                {"say": "A1001, please.", "role": "user"},
                {"tool": "lookup_order", "args": {"order_id": "A1001"}},
                {"say": "It has shipped. Bye!"},
                {"hangup": True},
            ]
            runway = stack.enter_context(
                RunwayEmulator(script=script, api_key=RUNWAY_CANARY, plan={"provisioning": 0.05})
            )
            env["RUNWAYML_BASE_URL"] = runway.base_url
        try:
            from masquerade_openai.emulator import OpenAIRealtimeEmulator
        except ImportError:
            pass
        else:
            openai = stack.enter_context(OpenAIRealtimeEmulator(api_key=OPENAI_CANARY))
            env["OPENAI_BASE_URL"] = openai.base_url
        yield


def test_canaries_never_leave_any_example(canaries: None) -> None:
    examples = _examples()
    assert examples, "no examples found"
    with OtlpReceiver() as receiver:
        env = base_env(receiver)
        with emulators_accepting_the_canaries(env), ThreadPoolExecutor(2) as pool:
            outputs = list(pool.map(lambda p: (p, run_command(_command(p), env)), examples))
    for path, output in outputs:
        assert_clean(f"the output of {path.relative_to(ROOT)}", output)
    for body in receiver.raw_bodies:
        for canary in CANARIES:
            assert canary.encode() not in body
