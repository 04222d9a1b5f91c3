"""``examples/browser_voice`` in a real browser: headless Chromium against the emulator.

The page makes a WebRTC offer, the backend answers it through masquerade (call created
at the emulator, sideband attached), and the page shows the SDP answer and the
transcript and tool calls the backend saw on the sideband. Media itself is not emulated.
Chromium is driven through its DevTools protocol over a websocket (no extra package).
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from masquerade import Host, Poller
from masquerade_openai.emulator import OpenAIRealtimeEmulator

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "browser_voice" / "app.py"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn serves the example on asyncio


@pytest.fixture
def browser() -> str:
    found = find_browser()
    if found is None:
        pytest.skip("no Chromium found (looked for " + ", ".join(BROWSERS) + " on PATH); "
                    "install it with `apt-get install -y chromium` (.ci/run does)")
    return found


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("browser_voice_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def site(emulator: OpenAIRealtimeEmulator) -> AsyncIterator[str]:
    import uvicorn

    app = load_example().build_app(
        Host(plugins=[emulator.provider(open_timeout=15.0, handshake_timeout=15.0)],
             load_entrypoints=False,
             poller=Poller(initial_interval=0.01, max_interval=0.05))
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):  # a bound against a hang, not a timing check
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class DevTools:
    """Just enough of the Chrome DevTools protocol: open a page, evaluate JavaScript."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.session: str | None = None

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"id": next(self.ids), "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        await self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def open(self, url: str) -> None:
        target = await self.call("Target.createTarget", url="about:blank")
        attached = await self.call("Target.attachToTarget", targetId=target["targetId"],
                                   flatten=True)
        self.session = attached["sessionId"]
        await self.call("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression,
                                 awaitPromise=True, returnByValue=True)
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                value = await self.evaluate(expression)
                if value:
                    return value
                await asyncio.sleep(0.05)


@pytest.fixture
async def devtools(browser: str) -> AsyncIterator[DevTools]:
    from websockets.asyncio.client import connect

    profile = tempfile.mkdtemp(prefix="masquerade-chromium-")
    process = await asyncio.create_subprocess_exec(
        browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-dev-shm-usage", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", "--remote-debugging-port=0",
        f"--user-data-dir={profile}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": profile},
    )
    drain: asyncio.Task[None] | None = None
    try:
        endpoint = await asyncio.wait_for(_devtools_url(process), 60)
        drain = asyncio.get_running_loop().create_task(_drain(process))  # never let it block
        async with connect(endpoint, max_size=None) as ws:
            yield DevTools(ws)
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 10)
        if drain is not None:
            await asyncio.wait_for(drain, 10)
        shutil.rmtree(profile, ignore_errors=True)


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stderr is not None
    while await process.stderr.read(65536):
        pass


async def _devtools_url(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    seen: list[str] = []
    while line := (await process.stderr.readline()).decode("utf-8", "replace"):
        seen.append(line)
        if "DevTools listening on " in line:
            return line.split("DevTools listening on ", 1)[1].strip()
    raise AssertionError("Chromium exited before it listened: " + "".join(seen)[-2000:])


async def test_the_page_gets_an_sdp_answer_and_the_sideband_transcript(
    emulator: OpenAIRealtimeEmulator, site: str, devtools: DevTools
) -> None:
    await devtools.open(site)
    await devtools.wait_for("document.readyState === 'complete' && !!document.getElementById"
                            "('start')")
    await devtools.evaluate("document.getElementById('start').click()")
    answer = await devtools.wait_for("document.getElementById('answer').textContent")
    assert answer.startswith("v=0")
    await devtools.wait_for("document.getElementById('state').textContent === 'connected'")
    [call] = emulator.calls.values()
    assert call.kind == "webrtc" and call.offer is not None and "m=audio" in call.offer
    assert [t["name"] for t in (call.accept_config or {})["tools"]] == ["lookup_order"]
    await devtools.evaluate(
        "document.getElementById('text').value = 'call lookup_order {\"order_id\": \"A7\"}';"
        "document.getElementById('send').click()"
    )
    transcript = await devtools.wait_for(
        "[...document.querySelectorAll('#transcript li.assistant')]"
        ".map(li => li.textContent).join('\\n')"
    )
    assert "lookup_order returned" in transcript
    tools = await devtools.evaluate("document.getElementById('tools').textContent")
    assert "lookup_order" in tools and "shipped" in tools
    refused = await devtools.evaluate("document.getElementById('transcript').textContent")
    assert "refused the answer" not in refused  # Chromium accepted the emulator's answer
    await devtools.evaluate("document.getElementById('stop').click()")
    await devtools.wait_for("document.getElementById('state').textContent === 'ended'")
    assert call.state == "ended"
