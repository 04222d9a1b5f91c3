"""``--trace``: the CLI exports real OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``.

Runs the command in a subprocess (installing a global tracer provider is what ``--trace``
does, and a test process must keep its own global state untouched), against a real
OTLP/HTTP receiver on loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from masquerade import ConfigurationError
from masquerade._otel import setup_tracing_from_env
from masquerade.cli import build_parser

from .otlp_receiver import OtlpReceiver


def run_cli(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "masquerade.cli", *argv],
        env=environ, capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.parametrize(
    ("argv", "trace"),
    [(["--trace", "demo"], True), (["demo", "--trace"], True), (["demo"], False),
     (["--log-json", "--trace", "plugins"], True)],
)
def test_trace_flag_before_or_after_the_command(argv: list[str], trace: bool) -> None:
    args = build_parser().parse_args(argv)
    assert args.trace is trace


def test_cli_trace_exports_one_trace_per_session() -> None:
    with OtlpReceiver() as receiver:
        done = run_cli(
            "demo", "--trace", "--json", "--pace", "0",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_METRICS_EXPORTER="otlp",
            PHOENIX_PROJECT_NAME="masquerade-test",
        )
    assert done.returncode == 0, done.stderr
    spans = receiver.spans
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 1, [s.name for s in roots]  # one trace for the demo's one session
    assert {s.trace_id for s in spans} == {roots[0].trace_id}
    assert roots[0].name.startswith("invoke_workflow ")  # the demo is a graph run
    (agent,) = [s for s in spans if s.name.startswith("invoke_agent")]
    (node,) = [s for s in spans if s.span_id == agent.parent_span_id]
    assert node.name.startswith("node ")
    assert node.parent_span_id == roots[0].span_id
    assert agent.resource["service.name"] == "masquerade"
    assert agent.resource["openinference.project.name"] == "masquerade-test"
    assert agent.scope == "masquerade"
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    tools = [s for s in spans if s.name.startswith("execute_tool ")]
    assert len(tools) >= 3
    assert all(s.parent_span_id == agent.span_id for s in tools)
    timed_out = [s for s in tools if s.attributes.get("error.type") == "timeout"]
    assert len(timed_out) == 1
    assert timed_out[0].status_code == 2
    assert "gen_ai.client.operation.duration" in receiver.metric_names
    assert "masquerade.session.active" in receiver.metric_names


def test_cli_trace_without_a_collector_still_finishes() -> None:
    # Nothing listens on port 9 (discard): the export fails, the command does not.
    done = run_cli(
        "demo", "--trace", "--json", "--pace", "0",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_EXPORTER_OTLP_TIMEOUT="1",
    )
    assert done.returncode == 0, done.stderr
    assert '"outcome": "completed"' in done.stdout


def test_an_installed_provider_is_kept() -> None:
    script = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from masquerade._otel import setup_tracing_from_env

        mine = TracerProvider()
        trace.set_tracer_provider(mine)
        shutdown = setup_tracing_from_env()
        shutdown()
        assert trace.get_tracer_provider() is mine
        print("kept")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "kept", done.stderr


def test_missing_sdk_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(ConfigurationError) as info:
        setup_tracing_from_env({})
    assert "OpenTelemetry SDK" in info.value.message
    assert "otel extra" in info.value.hint and "docs/first-hour.md" in info.value.hint
    assert "pip install 'masquerade" not in info.value.hint  # not on a package index
    done: Any = run_cli("demo", "--help")
    assert "--trace" in done.stdout
