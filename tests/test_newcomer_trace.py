"""``examples/tracing/trace_session.py`` says whether its trace reached a backend."""

from __future__ import annotations

import subprocess
import sys

from .newcomer_helpers import EXAMPLES, ROOT, clean_env, closed_port
from .otlp_receiver import OtlpReceiver

SCRIPT = str(EXAMPLES / "tracing" / "trace_session.py")


def run_example(endpoint: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT],
        env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_without_a_trace_backend_it_never_claims_an_export() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    # The exporter retries a refused export until its timeout (10 s by default): 1 s is
    # enough to know nothing listens.
    done = run_example(endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="1")

    assert done.returncode == 1
    assert "ticket: Ada Lovelace: completed, 3 tool calls (1 failed)" in done.stdout
    assert "trace exported" not in done.stdout + done.stderr
    assert "the trace was NOT exported" in done.stderr
    assert f"could not be sent to {endpoint}" in done.stderr


def test_with_a_trace_backend_it_reports_what_it_exported() -> None:
    with OtlpReceiver() as receiver:
        done = run_example(receiver.endpoint)
        names = {span.name for span in receiver.spans}

    assert done.returncode == 0, done.stderr
    assert f"trace exported to {receiver.endpoint}: " in done.stdout
    assert "invoke_workflow support-call" in names
    assert "execute_tool book_slot" in names
