"""The logging plugin's records, the JSON formatter and the CLI's --log-level/--log-json."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from masquerade import JsonFormatter, RedactingFilter, SessionRequest, configure_logging, tool
from masquerade.cli import main
from masquerade.testing import ScriptedProvider


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order."""
    if order_id == "0":
        raise LookupError("no order 0")
    return "shipped"


SCRIPT: list[dict[str, Any]] = [
    {"say": "Hello there, what can I do?"},
    {"audio": 40, "bytes": 32},
    {"tool": "lookup_order", "args": {"order_id": "42"}, "id": "call_ok"},
    {"tool": "lookup_order", "args": {"order_id": "0"}, "id": "call_bad"},
    {"client_event": "show_order", "args": {"id": "42"}},
    {"event": {"type": "error", "message": "rate limited", "code": "rate_limit"}},
    {"say": "Bye."},
]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    ws_level = logging.getLogger("websockets").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("websockets").setLevel(ws_level)


def session_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "masquerade.session"]


@pytest.mark.anyio
async def test_lifecycle_tool_and_error_records(
    make_host: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="masquerade")
    host = make_host(ScriptedProvider(SCRIPT, queued_polls=1))
    async with host:
        result = await host.run_session(SessionRequest(provider="scripted", tools=[lookup_order]))
    records = session_records(caplog)
    assert all(r.session_id == result.session_id for r in records)  # type: ignore[attr-defined]
    assert all(r.provider == "scripted" for r in records)  # type: ignore[attr-defined]
    kinds = [r.event_type for r in records]  # type: ignore[attr-defined]
    assert kinds[0] == "status"
    assert kinds[-1] == "ended"
    assert "ready" in kinds
    assert "client_event" in kinds
    queued = [r for r in records if getattr(r, "queued", False)]
    assert len(queued) == 1
    assert "queued for capacity" in queued[0].getMessage()

    calls = [r for r in records if r.event_type == "tool.call"]  # type: ignore[attr-defined]
    assert [(r.tool, r.call_id) for r in calls] == [  # type: ignore[attr-defined]
        ("lookup_order", "call_ok"), ("lookup_order", "call_bad")
    ]
    answers = {r.call_id: r for r in records if r.event_type == "tool.result"}  # type: ignore[attr-defined]
    assert answers["call_ok"].levelno == logging.INFO
    assert answers["call_ok"].duration_ms >= 0  # type: ignore[attr-defined]
    assert answers["call_bad"].levelno == logging.WARNING
    assert answers["call_bad"].error_type == "exception"  # type: ignore[attr-defined]
    assert "no order 0" in answers["call_bad"].getMessage()
    error = next(r for r in records if r.event_type == "error")  # type: ignore[attr-defined]
    assert (error.levelno, error.code, error.fatal) == (logging.WARNING, "rate_limit", False)  # type: ignore[attr-defined]
    ended = records[-1]
    assert ended.outcome == "completed"
    assert ended.duration_s is not None
    # Nothing per audio delta and no transcript text at INFO.
    assert not any("audio" in r.getMessage() for r in records)
    assert not any("Hello there" in r.getMessage() for r in records)


@pytest.mark.anyio
async def test_audio_is_never_logged_one_by_one_even_at_debug(
    make_host: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MASQUERADE_CAPTURE_CONTENT", raising=False)
    caplog.set_level(logging.DEBUG, logger="masquerade")

    async def count(audio_steps: int) -> int:
        caplog.clear()
        host = make_host(ScriptedProvider([{"say": "hi there"}, {"audio": audio_steps}]))
        async with host:
            await host.run_session(SessionRequest(provider="scripted"))
        return len(session_records(caplog))

    assert await count(1) == await count(300)
    turn = next(r for r in session_records(caplog) if getattr(r, "role", None) == "assistant")
    assert "hi there" not in turn.getMessage()  # transcripts need content capture


@pytest.mark.anyio
async def test_transcripts_at_debug_with_content_capture(
    make_host: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASQUERADE_CAPTURE_CONTENT", "1")
    caplog.set_level(logging.DEBUG, logger="masquerade")
    host = make_host(ScriptedProvider([{"say": "hi there"}]))
    async with host:
        await host.run_session(SessionRequest(provider="scripted"))
    assert any("hi there" in r.getMessage() for r in session_records(caplog))
    summary = session_records(caplog)[-1]
    assert (summary.turns, summary.tool_calls) == (1, 0)  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_failed_session_logs_an_error(
    make_host: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="masquerade")
    host = make_host(ScriptedProvider([{"fail": "socket closed 1011", "code": "ws_1011"}]))
    async with host:
        await host.run_session(SessionRequest(provider="scripted"))
    ended = session_records(caplog)[-1]
    assert ended.levelno == logging.ERROR
    assert ended.failure_code == "ws_1011"  # type: ignore[attr-defined]
    assert "socket closed 1011" in ended.getMessage()


def make_record(msg: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.getLogger("masquerade.session").makeRecord(
        "masquerade.session", logging.WARNING, __file__, 1, msg, args, None, extra=extra
    )
    return record


def test_json_formatter_fields_and_redaction() -> None:
    key = "key_" + "ab" * 32
    record = make_record(
        "tool %s failed with %s", "lookup", key,
        session_id="ses_1", tool="lookup", call_id="call_1", duration_ms=1.5,
        when=object(), sessionKey="plain-session-key-value", nested={"token": "abc12345xyz"},
    )
    try:
        raise RuntimeError(f"Authorization: Bearer {key}")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "WARNING"
    assert data["logger"] == "masquerade.session"
    assert data["message"] == "tool lookup failed with [redacted]"
    assert (data["session_id"], data["tool"], data["call_id"], data["duration_ms"]) == (
        "ses_1", "lookup", "call_1", 1.5
    )
    assert data["when"].startswith("<object object")
    assert data["sessionKey"] == "[redacted]"
    assert data["nested"] == {"token": "[redacted]"}
    assert "RuntimeError" in data["exception"]
    assert key not in data["exception"]
    assert data["ts"].endswith("+00:00")
    assert key not in line


def test_redacting_filter_masks_args_and_tracebacks() -> None:
    key = "sk-proj-" + "Z" * 40
    record = make_record("connecting with %s", key)
    try:
        raise ValueError(key)
    except ValueError:
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record) is True
    text = logging.Formatter().format(record)
    assert "connecting with [redacted]" in text
    assert "ValueError" in text
    assert key not in text
    untouched = make_record("plain %d", 3)
    RedactingFilter().filter(untouched)
    assert untouched.args == (3,)  # nothing to mask: the record is left as it was


def test_configure_logging_replaces_its_handler(restore_logging: None) -> None:
    configure_logging("INFO")
    handler = configure_logging("debug", json_lines=True)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_masquerade", False)]
    assert ours == [handler]
    assert isinstance(handler.formatter, JsonFormatter)
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("websockets").level == logging.INFO
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("LOUD")


@pytest.mark.parametrize("placement", ["before", "after"])
def test_cli_log_json(
    placement: str, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    options = ["--log-level", "INFO", "--log-json"]
    demo = ["demo", "--json", "--pace", "0"]
    argv = options + demo if placement == "before" else demo + options
    assert main(argv) == 0
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    session = [r for r in lines if r["logger"] == "masquerade.session"]
    assert session, err
    assert {r["session_id"] for r in session} == {session[0]["session_id"]}
    answers = [r for r in session if r.get("event_type") == "tool.result"]
    assert answers
    assert all("call_id" in r and "duration_ms" in r for r in answers)
    assert any(r["level"] == "WARNING" and r.get("error_type") == "timeout" for r in answers)


def test_cli_rejects_an_unknown_log_level(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    assert main(["--log-level", "CHATTY", "plugins"]) == 2
    assert "unknown log level 'CHATTY'" in capsys.readouterr().err


def test_the_cli_leaves_logging_as_it_found_it(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("websockets").level)
    assert main(["--log-level", "DEBUG", "--log-json", "plugins", "--json"]) == 0
    capsys.readouterr()
    after = (list(root.handlers), root.level, logging.getLogger("websockets").level)
    assert after == before
