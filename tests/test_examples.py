"""Every example, run the way its README says, against the Runway emulator; and the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from masquerade import Host, SessionRequest
from masquerade.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

runway = pytest.importorskip("masquerade_runway.emulator")


@pytest.fixture(autouse=True)
def no_runway_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Examples run offline: no key, so the emulator is used."""
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    monkeypatch.delenv("RUNWAYML_BASE_URL", raising=False)


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "key_" not in out + err  # no API key, emulator's included, is ever printed
    return code, [json.loads(line) for line in out.splitlines()]


# ---------------------------------------------------------------- quickstart
def test_quickstart_is_short_and_runs_offline(capsys: pytest.CaptureFixture[str]) -> None:
    source = (EXAMPLES / "quickstart.py").read_text()
    assert len(source.splitlines()) < 30

    code, events = cli_json(capsys, "run", str(EXAMPLES / "quickstart.py"), "--json")

    assert code == 0
    assert events[0]["type"] == "emulator"
    assert events[0]["provider"] == "runway"
    assert events[0]["reason"] == "RUNWAYML_API_SECRET is not set"
    final = events[-1]
    assert final["type"] == "graph.ended"
    assert final["state"]["call"]["outcome"] == "completed"
    assert final["state"]["summary"] == "completed, 1 tool call(s)"  # the default script
    said = [e["text"] for e in events if e["type"] == "transcript.done"]
    assert said[0].startswith("Hi! I'm an emulated avatar")


def test_quickstart_reports_the_frontend_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(EXAMPLES / "quickstart.py")])
    out = capsys.readouterr().out
    assert code == 0
    joins = [line for line in out.splitlines() if line.startswith("frontend joins:")]
    assert len(joins) == 1
    assert "sessionId" in joins[0]
    assert "sessionKey" not in joins[0]  # on_ready printed only the public part


def test_online_without_a_key_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    code, events = cli_json(capsys, "run", str(EXAMPLES / "quickstart.py"), "--json", "--online")

    assert code == 1  # the call failed, so the run failed (the next node did not run)
    assert all(e["type"] != "emulator" for e in events)
    assert not [e for e in events if e["type"] == "node.started" and e["node"] == "summarize"]
    error = events[-1]
    assert error["type"] == "graph.error" and error["node"] == "call"
    assert "API key" in error["message"]


def test_offline_flag_and_script_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNWAYML_API_SECRET", "key_" + "0" * 64)  # set, but --offline wins
    script = tmp_path / "conversation.json"
    script.write_text(
        json.dumps(
            [
                {"say": "Which order?"},
                {"say": "B2", "role": "user"},
                {"tool": "lookup_order", "args": {"order_id": "B2"}},
                {"hangup": True},
            ]
        )
    )
    code, events = cli_json(
        capsys,
        "run",
        str(EXAMPLES / "quickstart.py"),
        "--json",
        "--offline",
        "--script",
        str(script),
    )

    assert code == 0
    assert events[0]["reason"] == "--offline"
    assert events[-1]["state"]["summary"] == "completed, 1 tool call(s)"
    assert os.environ["RUNWAYML_API_SECRET"] == "key_" + "0" * 64  # restored after the run
    assert "RUNWAYML_BASE_URL" not in os.environ


# ---------------------------------------------------------------- concierge
def test_concierge_example_books_a_slot_and_writes_a_ticket(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, events = cli_json(
        capsys,
        "run",
        str(EXAMPLES / "concierge" / "concierge.py"),
        "--state",
        '{"customer": "Grace Hopper"}',
        "--json",
    )

    assert code == 0
    calls = [(e["name"], e["arguments"]) for e in events if e["type"] == "tool.call"]
    assert calls == [
        ("lookup_order", {"order_id": "A1001"}),
        ("book_slot", {"day": "Sunday", "hour": "ten"}),
        ("book_slot", {"day": "Sunday", "hour": 10}),
        ("book_slot", {"day": "Monday", "hour": 10}),
    ]
    answers = [e.get("error_type") or "ok" for e in events if e["type"] == "tool.result"]
    assert answers == ["ok", "arguments", "timeout", "ok"]
    ticket = events[-1]["state"]["ticket"]
    assert ticket["customer"] == "Grace Hopper"
    assert ticket["order_id"] == "A1001"
    assert ticket["booked_slot"] == "Monday 10:00"
    assert ticket["tool_errors"] == ["book_slot: arguments", "book_slot: timeout"]
    assert ticket["outcome"] == "completed"


def test_concierge_example_runs_with_python(tmp_path: Path) -> None:
    # "One command": the file runs itself through the CLI.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNWAYML_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "concierge" / "concierge.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.splitlines()[-1])
    assert final["state"]["ticket"]["booked_slot"] == "Monday 10:00"


# ---------------------------------------------------------------- demo
def test_demo_shows_a_complete_session_against_the_emulator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The emulated queue lasts 3 paces: 0.3 s, so the first poll surely sees it under load.
    code = main(["demo", "--pace", "0.1"])
    out, err = capsys.readouterr()

    assert code == 0, err
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0].startswith(
        "masquerade demo · RUNWAYML_API_SECRET is not set: running the Runway emulator "
        "in-process at http://127.0.0.1:"
    )
    assert "▶ concierge" in lines
    assert "▶ ticket" in lines
    assert any(line.startswith("… NOT_READY · queued for capacity") for line in lines)
    assert "assistant ▸ Hi, I'm your concierge. How can I help?" in lines
    assert "user ▸ Where is my order A1001?" in lines
    assert '⚙ tool lookup_order(order_id="A1001")' in lines
    assert '⚙ tool book_slot(day="Sunday", hour="ten")' in lines
    assert any(line.startswith("↳ timeout: tool 'book_slot'") for line in lines)
    assert "↳ booked Monday 10:00  [" in "\n".join(lines)
    assert '⇢ client event show_confirmation(day="Monday", hour=10)' in lines
    assert "● ended: completed (completed)" in lines
    # The summary: outcome, duration, tools.
    assert "outcome    completed" in lines
    assert any(line.startswith("duration") for line in lines)
    assert "tools      4 call(s): lookup_order x1, book_slot x3 (arguments, timeout)" in lines
    assert "booked_slot  Monday 10:00" in lines
    assert "sessionKey=…" in out
    assert "sessionKey=key" not in out


def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, events = cli_json(capsys, "demo", "--pace", "0", "--json", "--customer", "Linus")

    assert code == 0
    assert events[0]["type"] == "demo"
    assert events[0]["provider"] == "runway"
    assert {e["type"] for e in events} >= {
        "node.started",
        "status",
        "ready",
        "transcript.delta",
        "transcript.done",
        "tool.call",
        "tool.result",
        "client_event",
        "ended",
        "node.finished",
        "graph.ended",
    }
    ready = next(e for e in events if e["type"] == "ready")
    assert ready["credentials"]["secrets"] == {"sessionKey": "[redacted]"}
    assert events[-1]["state"]["ticket"]["customer"] == "Linus"


def test_demo_with_a_key_uses_the_api_and_serves_a_join_page(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Real Runway" here is the emulator behind RUNWAYML_BASE_URL: the demo takes its
    # online path (the installed runway plugin, consume=True, the browser join page).
    with runway.RunwayEmulator(script=[{"say": "Welcome!"}, {"hangup": True}]) as emulator:
        monkeypatch.setenv("RUNWAYML_API_SECRET", emulator.api_key)
        monkeypatch.setenv("RUNWAYML_BASE_URL", emulator.base_url)
        code = main(["demo"])
        consumed = emulator.session(emulator.session_ids[0])["consumed"]
    out, err = capsys.readouterr()

    assert code == 0, err
    first = out.splitlines()[0]
    assert "RUNWAYML_API_SECRET is set: this is a real Runway session" in first
    assert "Join it from a browser at http://127.0.0.1:" in first
    assert "frontend joins with livekit:" in out
    assert "token=…" in out
    assert consumed
    assert emulator.api_key not in out + err


@pytest.mark.anyio
async def test_join_page_serves_the_page_and_the_credentials() -> None:
    import httpx

    from masquerade import JoinCredentials
    from masquerade.cli._join_page import JoinPage

    async with JoinPage() as page, httpx.AsyncClient() as client:
        html = await client.get(page.url)
        before = await client.get(page.url + "credentials")
        page.publish(
            JoinCredentials(
                provider="runway",
                kind="livekit",
                public={"url": "wss://example.livekit.cloud"},
                secrets={"token": "eyJ.secret.token"},
            )
        )
        after = await client.get(page.url + "credentials")
        missing = await client.get(page.url + "nope")
        posted = await client.post(page.url + "credentials")

    assert html.status_code == 200
    assert "livekit-client" in html.text
    assert before.status_code == 204
    assert after.json() == {"url": "wss://example.livekit.cloud", "token": "eyJ.secret.token"}
    assert (missing.status_code, posted.status_code) == (404, 405)


# ---------------------------------------------------------------- plugin
def test_plugin_example_is_listed_by_masquerade_plugins(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plugins", "--json"])
    plugins = {p["name"]: p for p in json.loads(capsys.readouterr().out)}

    assert code == 0
    audit = plugins["example-audit"]
    assert audit["status"] == "loaded"
    assert audit["distribution"] == "masquerade-example-plugin"
    assert audit["hooks"] == ["masquerade_register_tools", "masquerade_session_event"]


@pytest.mark.anyio
async def test_plugin_example_offers_its_tool_and_audits_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_poller: Any
) -> None:
    import masquerade_example_plugin as plugin

    audit_file = tmp_path / "audit.jsonl"
    monkeypatch.setenv(plugin.AUDIT_FILE_ENV, str(audit_file))
    script = [
        {"say": "When are you open on Saturday?", "role": "user"},
        {"tool": "store_hours", "args": {"day": "Saturday"}},
        {"say": "We open at ten on Saturdays."},
        {"hangup": True},
    ]
    async with runway.RunwayEmulator(script=script) as emulator:
        # Entry points are loaded: the example plugin is found the way users find it.
        host = Host(plugins=[emulator.provider()], poller=fast_poller)
        assert "store_hours" in host.tools
        async with host:
            result = await host.run_session(
                SessionRequest(provider="runway", avatar="human-resource")
            )

    assert result.tool_calls[0].output == "open 10:00-16:00"
    mine = [r for r in plugin.AUDIT if r["session"] == result.session_id]
    # (Runway finishes a transcript turn when the next one starts: compare as a multiset.)
    assert sorted(r["type"] for r in mine) == [
        "ended",
        "tool.call",
        "tool.result",
        "transcript.done",
        "transcript.done",
    ]
    assert mine[-1]["type"] == "ended"
    assert mine[-1]["outcome"] == "completed"
    written = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert [r["type"] for r in written if r["session"] == result.session_id] == [
        r["type"] for r in mine
    ]


# ---------------------------------------------------------------- LangGraph
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # LangGraph runs on asyncio only
async def test_langgraph_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import langgraph_concierge  # type: ignore[import-not-found]

    final = await langgraph_concierge.main("Grace", quiet=True)

    assert final["ticket"] == "Grace: completed; booked Monday 10:00"
    assert [c.name for c in final["call"].tool_calls] == [
        "lookup_order",
        "book_slot",
        "book_slot",
        "book_slot",
    ]
