"""OpenAI calls through the service: SIP webhooks, and browser offers.

``POST /v1/webhooks/openai``: the OpenAI emulator rings the service (a signed
``realtime.call.incoming`` webhook); the service verifies it, accepts the call and starts
a run whose OpenAI AvatarNode attaches to the call by its id. Forged and replayed
webhooks start nothing.

``POST /v1/runs/{id}/sdp``: a browser's WebRTC offer reaches the worker running the
run's browser-frontend session, which creates the call (tools from the backend) and
attaches the sideband; the SDP answer comes back to the browser.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import masquerade_dbos.plugin
from dbos import DBOS
from masquerade import Host, Poller
from masquerade_dbos import DurableGraph
from masquerade_dbos.service import ServiceConfig
from masquerade_openai import sign_webhook
from masquerade_openai.emulator import OpenAIRealtimeEmulator

from ..emulator_helpers import OPENAI_FAST as FAST
from .service_graphs import browser, phone
from .service_helpers import read_events, serving

pytestmark = pytest.mark.anyio

API_KEY = "mk_webhook_0123456789abcdefghij"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def answers(emulator: Any) -> int:
    """How many function_call_output items the emulator has read, on any connection."""
    return sum(
        e.get("item", {}).get("type") == "function_call_output"
        for c in emulator.connections for e in c.events_of("conversation.item.create")
    )


@pytest.fixture
def openai_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIRealtimeEmulator]:
    with OpenAIRealtimeEmulator() as emulator:
        # What the service accepts incoming calls with (RealtimeCalls reads them).
        monkeypatch.setenv("OPENAI_API_KEY", emulator.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", emulator.base_url)
        yield emulator


async def runs() -> list[str]:
    return [w.workflow_id for w in await DBOS.list_workflows_async(load_input=False)]


def durable_on(
    backend: str,
    graph: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    emulator: OpenAIRealtimeEmulator,
) -> DurableGraph[Any]:
    """``graph`` as a durable graph on ``backend`` with the emulator's OpenAI provider."""
    url = (
        f"sqlite:///{tmp_path / 'runs.sqlite'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    host = Host(
        plugins=[masquerade_dbos.plugin, emulator.provider(**FAST)],
        load_entrypoints=False,
        poller=Poller(initial_interval=0.01, max_interval=0.05),
    )
    return DurableGraph(graph, database_url=url, polling_interval=0.05, host=host)


def phone_config(emulator: OpenAIRealtimeEmulator) -> ServiceConfig:
    """The service taking the emulator's signed webhooks."""
    return ServiceConfig(
        api_key=API_KEY, webhook_secret=emulator.webhook_secret, events_poll_interval=0.05
    )


async def finished(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """``GET url`` (a run) until the run succeeded or failed."""
    with anyio.fail_after(30):
        while True:
            run: dict[str, Any] = (await client.get(url, headers=AUTH)).json()
            if run["status"] in ("succeeded", "failed"):
                return run
            await anyio.sleep(0.05)


@asynccontextmanager
async def phone_service(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    emulator: OpenAIRealtimeEmulator,
) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The phone graph served on ``backend``: its base URL and a client for it."""
    durable = durable_on(backend, phone, tmp_path, request, emulator)
    async with (
        durable,
        serving(durable, phone_config(emulator)) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        yield base, client


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_an_incoming_call_starts_a_run_that_answers_it(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    openai_emulator: OpenAIRealtimeEmulator,
) -> None:
    async with phone_service(backend, tmp_path, request, openai_emulator) as (base, client):
        hook = f"{base}/v1/webhooks/openai"
        # A forged signature: 400, nothing started, the call not accepted.
        ringing = openai_emulator.new_call()
        body, headers = openai_emulator.webhook_request(ringing)
        forged = sign_webhook(body, "whsec_" + "A" * 43 + "=", msg_id=headers["webhook-id"])
        refused = await client.post(hook, content=body, headers=forged)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_webhook"
        unsigned = await client.post(hook, content=body)
        assert unsigned.status_code == 400
        assert await runs() == []
        assert openai_emulator.calls[ringing].state == "incoming"  # not accepted

        # The emulator rings the service: verified, accepted, a run attaches to the call.
        call_id, status = await openai_emulator.ring(hook, sip_headers={"From": "sip:+1@x"})
        assert status == 200
        [run_id] = await runs()
        ready = await client.get(
            f"/v1/runs/{run_id}/credentials", params={"wait": 20}, headers=AUTH
        )
        assert ready.status_code == 200, ready.text
        assert ready.json()["session"]["provider"] == "openai"
        assert openai_emulator.calls[call_id].state == "accepted"

        # The same webhook again is a replay: refused, still one run.
        body, headers = openai_emulator.webhook_request(call_id)
        first = await client.post(hook, content=body, headers=headers)
        assert first.status_code == 200 and first.json()["id"] == run_id  # one run per call
        replay = await client.post(hook, content=body, headers=headers)
        assert replay.status_code == 400
        assert "replay" in replay.json()["error"]["message"]
        assert await runs() == [run_id]

        # The caller asks; the backend tool answers once; the caller hangs up.
        openai_emulator.speak('call lookup_order {"order_id": "Z9"}')
        events = await read_events(
            client, f"/v1/runs/{run_id}/events", headers=AUTH, until="tool.result"
        )
        assert events[-1][2]["name"] == "lookup_order"
        # The output reaches the emulator (its own thread) a moment after tool.result.
        await openai_emulator.wait_for(lambda: answers(openai_emulator) == 1)
        openai_emulator.caller_hangs_up(call_id)
        final = await finished(client, f"/v1/runs/{run_id}")
        assert final["status"] == "succeeded", final
        state = final["state"]
        assert state["call_id"] == call_id and state["sip_headers"] == {"From": "sip:+1@x"}
        assert [t["name"] for t in state["call"]["tool_calls"]] == ["lookup_order"]
        record = openai_emulator.connection()
        assert record.query == {"call_id": call_id}
        outputs = [
            e for e in record.events_of("conversation.item.create")
            if e.get("item", {}).get("type") == "function_call_output"
        ]  # fmt: skip
        assert len(outputs) == 1  # the tool call was answered exactly once
        assert json.loads(outputs[0]["item"]["output"])["status"] == "shipped"


async def test_webhooks_are_refused_when_not_configured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    durable = DurableGraph(phone, database_url=url, worker=False)
    async with durable, serving(durable, ServiceConfig()) as base:
        async with httpx.AsyncClient(base_url=base) as client:
            answer = await client.post("/v1/webhooks/openai", content=b"{}")
        assert answer.status_code == 501
        assert answer.json()["error"]["code"] == "not_configured"
        assert await runs() == []


OFFER = "\r\n".join([
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:0", "a=sendrecv",
    "a=rtpmap:111 opus/48000/2",
]) + "\r\n"  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_browser_offer_is_answered_by_the_runs_session(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    openai_emulator: OpenAIRealtimeEmulator,
) -> None:
    durable = durable_on(backend, browser, tmp_path, request, openai_emulator)
    config = ServiceConfig(api_key=API_KEY, events_poll_interval=0.05, max_wait=20)
    async with (
        durable,
        serving(durable, config) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        first = (await client.post("/v1/runs", json={}, headers=AUTH)).json()
        other = (await client.post("/v1/runs", json={}, headers=AUTH)).json()
        sdp = f"/v1/runs/{first['id']}/sdp"
        token = {"Authorization": f"Bearer {first['client_token']}"}
        typed = {**token, "Content-Type": "application/sdp"}

        refused = await client.post(
            sdp, content=OFFER, headers={"Authorization": f"Bearer {other['client_token']}"}
        )
        assert refused.status_code == 403
        garbage = await client.post(sdp, content=b"hello", headers=typed)
        assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "invalid_sdp"

        answer = await client.post(sdp, content=OFFER, headers=typed)
        assert answer.status_code == 201, answer.text
        assert answer.headers["content-type"].startswith("application/sdp")
        assert answer.text.startswith("v=0")
        ready = await client.get(
            f"/v1/runs/{first['id']}/credentials", params={"wait": 20}, headers=token
        )
        assert ready.status_code == 200, ready.text
        assert ready.json()["session"]["kind"] == "webrtc"
        [call] = [c for c in openai_emulator.calls.values() if c.kind == "webrtc"]
        assert call.offer is not None and "m=audio" in call.offer
        # The tools were declared by the backend, in the call's configuration.
        assert [t["name"] for t in (call.accept_config or {})["tools"]] == ["lookup_order"]

        # The sideband answers a tool call exactly once; cancelling hangs the call up.
        openai_emulator.speak('call lookup_order {"order_id": "W3"}')
        events = await read_events(
            client, f"/v1/runs/{first['id']}/events", headers=token, until="tool.result"
        )
        assert events[-1][2]["output"] == {"order_id": "W3", "status": "shipped"}
        await openai_emulator.wait_for(lambda: answers(openai_emulator) == 1)
        cancelled = await client.post(f"/v1/runs/{first['id']}/cancel", headers=AUTH)
        assert cancelled.status_code == 202
        await openai_emulator.wait_for(lambda: call.state == "ended", timeout=20)
        assert call.hung_up_by == "server"
        outputs = [
            e for c in openai_emulator.connections for e in c.events_of("conversation.item.create")
            if e["item"].get("type") == "function_call_output"
        ]  # fmt: skip
        assert len(outputs) == 1
        late = await client.post(sdp, content=OFFER, headers=typed)
        assert late.status_code == 409


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_webhook_replayed_to_another_process_is_refused(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    openai_emulator: OpenAIRealtimeEmulator,
) -> None:
    # Two services on one database stand for two ``serve`` processes: each app has its own
    # replay store, and only the database is shared.
    durable = durable_on(backend, phone, tmp_path, request, openai_emulator)
    config = phone_config(openai_emulator)
    async with (
        durable,
        serving(durable, config) as one,
        serving(durable, config) as two,
        httpx.AsyncClient(timeout=30) as client,
    ):
        hooks = [f"{one}/v1/webhooks/openai", f"{two}/v1/webhooks/openai"]
        # Bad input is still a clear 400, and claims nothing.
        call_id = openai_emulator.new_call()
        body, headers = openai_emulator.webhook_request(call_id)
        stale = {**headers, "webhook-timestamp": "yesterday"}
        refused = await client.post(hooks[0], content=body, headers=stale)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_webhook"
        assert "Unix seconds" in refused.json()["error"]["message"]
        assert openai_emulator.webhook_secret not in refused.text

        # The same delivery reaches both processes at once: accepted exactly once.
        answers: list[httpx.Response] = []

        async def deliver(hook: str) -> None:
            answers.append(await client.post(hook, content=body, headers=headers))

        async with anyio.create_task_group() as tg:
            for hook in hooks:
                tg.start_soon(deliver, hook)
        assert sorted(a.status_code for a in answers) == [200, 400], [a.text for a in answers]
        [replay] = [a for a in answers if a.status_code == 400]
        assert "replay" in replay.json()["error"]["message"]
        [run_id] = await runs()
        # Delivered again to either process later: still a replay.
        for hook in hooks:
            again = await client.post(hook, content=body, headers=headers)
            assert again.status_code == 400 and "replay" in again.json()["error"]["message"]
        assert await runs() == [run_id]

        openai_emulator.caller_hangs_up(call_id)
        await finished(client, f"{one}/v1/runs/{run_id}")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_delivery_whose_call_could_not_be_accepted_is_taken_when_retried(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    openai_emulator: OpenAIRealtimeEmulator,
) -> None:
    # OpenAI retries a failed delivery with the same webhook id: the id must not stay
    # claimed by the attempt that did nothing, or the retry is refused as a replay.
    async with phone_service(backend, tmp_path, request, openai_emulator) as (base, client):
        hook = f"{base}/v1/webhooks/openai"
        call_id = openai_emulator.new_call()
        body, headers = openai_emulator.webhook_request(call_id)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-" + "0" * 24)  # accept gets a 401
        failed = await client.post(hook, content=body, headers=headers)
        assert failed.status_code == 502, failed.text
        assert failed.json()["error"]["code"] == "accept_failed"
        assert "sk-wrong" not in failed.text
        assert openai_emulator.calls[call_id].state == "incoming"
        assert await runs() == []

        monkeypatch.setenv("OPENAI_API_KEY", openai_emulator.api_key)
        retried = await client.post(hook, content=body, headers=headers)
        assert retried.status_code == 200, retried.text
        assert openai_emulator.calls[call_id].state == "accepted"
        [run_id] = await runs()
        assert retried.json()["id"] == run_id
        # Taken once: the same delivery again is now a replay.
        again = await client.post(hook, content=body, headers=headers)
        assert again.status_code == 400 and "replay" in again.json()["error"]["message"]

        ready = await client.get(
            f"{base}/v1/runs/{run_id}/credentials", params={"wait": 20}, headers=AUTH
        )
        assert ready.status_code == 200, ready.text  # the run's session attached to the call
        openai_emulator.caller_hangs_up(call_id)
        final = await finished(client, f"{base}/v1/runs/{run_id}")
        assert final["status"] == "succeeded", final
