"""``examples/service``: the ``masquerade serve`` walkthrough, and its page in Chromium.

The walkthrough runs as the README says: ``masquerade serve`` in a process of its own
(SQLite, in-process worker, the Runway emulator in-process without a key) and the
backend script ``start_call.py`` against it. The pages (the example's own and the
built-in ``/join``) run in headless Chromium (Debian's ``chromium``, driven through its
DevTools protocol) against a live session: they fetch the credentials from
``/v1/runs/{id}/credentials`` with the client token and show the session's state.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import masquerade_dbos.plugin
from masquerade import Host, Poller
from masquerade_dbos import DurableGraph
from masquerade_dbos.service import ServiceConfig
from masquerade_runway.emulator import RunwayEmulator

from ..openai.test_browser_page import DevTools, browser, devtools  # noqa: F401
from .service_helpers import serving

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "service"
MASQUERADE = Path(sys.executable).parent / "masquerade"
KEY = "mk_example_0123456789abcdefghij"


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("RUNWAYML_API_SECRET", "MASQUERADE_DATABASE_URL", "MASQUERADE_API_KEY")
    }
    env.update(extra)
    return env


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``masquerade serve examples/service/app.py --port 0 --static ...`` with a key."""
    process = subprocess.Popen(
        [str(MASQUERADE), "serve", str(EXAMPLE / "app.py"), "--port", "0",
         "--static", str(EXAMPLE / "static")],
        cwd=tmp_path,
        env=_environ(tmp_path, MASQUERADE_API_KEY=KEY),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "serving app.py:graph at http://127.0.0.1:" in line, (
            line + (process.stderr.read() if process.stderr else "")
        )
        yield line.split(" at ", 1)[1].split("/ ", 1)[0]
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        assert (tmp_path / ".masquerade" / "runs.sqlite").exists()


def test_the_walkthrough(served: str, tmp_path: Path) -> None:
    assert httpx.get(f"{served}/healthz").json() == {"status": "ok"}
    assert httpx.post(f"{served}/v1/runs", json={}).status_code == 401  # the key is asked
    page = httpx.get(f"{served}/static/index.html")
    assert page.status_code == 200 and "/credentials" in page.text and "https://" not in page.text
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "start_call.py"), served],
        env=_environ(tmp_path, MASQUERADE_API_KEY=KEY),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"join: {served}/static/index.html?run=run_")
    assert "event: tool.call " in lines
    assert "event: transcript.done It has shipped. Bye!" in lines
    assert lines[-2:] == ["status: succeeded", "summary: completed, 1 tool call(s)"]
    assert KEY not in done.stdout


def test_without_a_key_serve_listens_on_loopback_only_and_says_so(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [str(MASQUERADE), "serve", str(EXAMPLE / "app.py"), "--port", "0", "--host", "0.0.0.0"],
        cwd=tmp_path,
        env=_environ(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        warning = process.stderr.readline()
        assert "MASQUERADE_API_KEY is not set" in warning and "127.0.0.1 only" in warning
        serving_line = process.stdout.readline()
        assert "at http://127.0.0.1:" in serving_line, serving_line
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def live_runway() -> Iterator[RunwayEmulator]:
    # The avatar stays in the call until the run is cancelled.
    script = [{"say": "Hello from the avatar."}, {"say": "Take your time."}]
    with RunwayEmulator(script=script, plan={"provisioning": 0.05}) as emulator:
        yield emulator


async def test_the_pages_show_the_session_in_chromium(
    tmp_path: Path, live_runway: RunwayEmulator, devtools: DevTools  # noqa: F811
) -> None:
    from masquerade.cli._run import load_graph

    graph, _, _ = load_graph(str(EXAMPLE / "app.py"))
    host = Host(
        plugins=[masquerade_dbos.plugin, live_runway.provider(end_grace=1.0)],
        load_entrypoints=False,
        poller=Poller(initial_interval=0.01, max_interval=0.05),
    )
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    durable = DurableGraph(graph, database_url=url, polling_interval=0.05, host=host)
    config = ServiceConfig(api_key=KEY, events_poll_interval=0.05)
    auth = {"Authorization": f"Bearer {KEY}"}
    async with (
        durable,
        serving(durable, config, static_dir=str(EXAMPLE / "static")) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        run = (await client.post("/v1/runs", json={"state": {}}, headers=auth)).json()
        query = f"run={run['id']}&token={run['client_token']}"

        await devtools.open(f"{base}/static/index.html?{query}")
        joined = await devtools.wait_for("window.joined && JSON.stringify(window.joined)")
        assert '"state":"ready"' in joined and '"sessionKey"' in joined
        await devtools.wait_for("document.getElementById('state').textContent === 'running'")
        said = await devtools.wait_for("document.getElementById('transcript').textContent")
        assert "Hello from the avatar." in said

        await devtools.open(f"{base}/join?{query}")  # the page built into serve
        detail = await devtools.wait_for(
            "document.getElementById('state').textContent === 'ready' && "
            "document.getElementById('detail').textContent"
        )
        assert "runway session" in detail

        await devtools.open(f"{base}/join?run={run['id']}&token=ct_forged")
        refused = await devtools.wait_for(
            "document.getElementById('state').textContent === 'error' && "
            "document.getElementById('detail').textContent"
        )
        assert "forbidden" in refused

        cancelled = await client.post(f"/v1/runs/{run['id']}/cancel", headers=auth)
        assert cancelled.status_code == 202
