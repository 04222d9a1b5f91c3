"""The call service over real HTTP on loopback, against the Runway emulator.

Each test runs a DurableGraph (SQLite or a real PostgreSQL) and serves it with uvicorn on
a free port; httpx drives it like a backend and a browser would.
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
from masquerade import Host, Poller
from masquerade_dbos import DurableGraph
from masquerade_dbos.service import ServiceConfig, openapi_schema
from masquerade_runway.emulator import RunwayEmulator

from .service_graphs import graph
from .service_helpers import read_events, serving
from .workers import WorkerProcess

pytestmark = pytest.mark.anyio

API_KEY = "mk_test_0123456789abcdefghijklmnop"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
STAYS = [
    {"say": "Hi Ada! Let me look up your order."},
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"say": "It has shipped."},
]
HANGS_UP = [*STAYS, {"hangup": True}]


@pytest.fixture(scope="module")
def runway_stays() -> Iterator[RunwayEmulator]:
    with RunwayEmulator(script=STAYS, plan={"provisioning": 0.05}) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def runway_hangs_up() -> Iterator[RunwayEmulator]:
    with RunwayEmulator(script=HANGS_UP, plan={"provisioning": 0.05}) as emulator:
        yield emulator


def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@asynccontextmanager
async def service(
    url: str,
    emulator: RunwayEmulator | None,
    *,
    worker: bool = True,
    **config: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    plugins: list[object] = [masquerade_dbos.plugin]
    if emulator is not None:
        plugins.append(emulator.provider(end_grace=1.0, result_wait=2.0))
    host = Host(
        plugins=plugins,
        load_entrypoints=False,
        poller=Poller(initial_interval=0.01, max_interval=0.05),
    )
    durable = DurableGraph(
        graph, database_url=url, worker=worker, polling_interval=0.05, host=host
    )
    config.setdefault("events_poll_interval", 0.05)
    async with (
        durable,
        serving(durable, ServiceConfig(**config)) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        yield client


async def wait_status(client: httpx.AsyncClient, run_id: str, *statuses: str) -> dict[str, Any]:
    with anyio.fail_after(30):
        while True:
            body: dict[str, Any] = (await client.get(f"/v1/runs/{run_id}", headers=AUTH)).json()
            if body["status"] in statuses:
                return body
            await anyio.sleep(0.05)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_submit_credentials_events_cancel(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    runway_stays: RunwayEmulator,
) -> None:
    url = database(backend, tmp_path, request)
    async with service(url, runway_stays, api_key=API_KEY) as client:
        # Server-to-server endpoints need the key.
        refused = await client.post("/v1/runs", json={"state": {}})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        wrong = await client.post("/v1/runs", json={}, headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401

        created = await client.post(
            "/v1/runs",
            json={"state": {"customer": "Grace"}, "idempotency_key": f"order-{backend}"},
            headers=AUTH,
        )
        assert created.status_code == 202, created.text
        run = created.json()
        assert run["id"].startswith("run_") and run["status"] == "queued"
        token = run["client_token"]

        again = await client.post(
            "/v1/runs",
            json={"state": {"customer": "Other"}, "idempotency_key": f"order-{backend}"},
            headers=AUTH,
        )
        assert again.status_code == 202
        assert again.json()["id"] == run["id"]
        assert again.json()["client_token"] == token

        # The frontend long-polls with its client token (no API key).
        answer = await client.get(
            f"/v1/runs/{run['id']}/credentials",
            params={"wait": 20},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert found["session"]["state"] == "ready"
        assert found["session"]["provider"] == "runway"
        session_id = found["credentials"]["sessionId"]  # Runway's id of the session
        session_key = found["credentials"]["sessionKey"]
        assert session_key and runway_stays.session(session_id)["status"] != "FAILED"
        # ... or with ?client_token= (what an EventSource or a plain link can do).
        by_query = await client.get(
            f"/v1/runs/{run['id']}/credentials", params={"client_token": token}
        )
        assert by_query.status_code == 200

        # The run as the backend sees it: no credentials in it.
        shown = await client.get(f"/v1/runs/{run['id']}", headers=AUTH)
        assert shown.status_code == 200
        assert shown.json()["status"] == "running"
        assert shown.json()["state"]["customer"] == "Grace"
        assert shown.json()["error"] is None
        assert session_key not in shown.text

        # Events: what `masquerade run --json` prints, with ids.
        events = await read_events(
            client, f"/v1/runs/{run['id']}/events", headers=AUTH, until="tool.result"
        )
        types = [data["type"] for _, _, data in events]
        assert types[0] == "node.started"
        assert "ready" in types and "tool.call" in types and types[-1] == "tool.result"
        ready = next(data for _, _, data in events if data["type"] == "ready")
        assert ready["node"] == "call" and ready["session_id"] == found["session"]["session_id"]
        assert all(session_key not in json.dumps(data) for _, _, data in events)
        ids = [int(i) for i, _, _ in events if i is not None]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)

        # Resumable: after Last-Event-ID come exactly the later events.
        middle = events[1][0]
        assert middle is not None
        resumed = await read_events(
            client,
            f"/v1/runs/{run['id']}/events",
            headers={**AUTH, "Last-Event-ID": middle},
            until="tool.result",
        )
        assert [e[0] for e in resumed] == [e[0] for e in events[2:]]

        # Cancel: the live call goes through its cancel path.
        cancelled = await client.post(f"/v1/runs/{run['id']}/cancel", headers=AUTH)
        assert cancelled.status_code == 202
        assert cancelled.json() == {"id": run["id"], "status": "cancelled"}
        body = await wait_status(client, run["id"], "cancelled")
        assert body["status"] == "cancelled"
        with anyio.fail_after(20):
            while not RunwayEmulator.terminal(runway_stays.session(session_id)["status"]):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        assert runway_stays.session(session_id)["status"] != "FAILED"
        twice = await client.post(f"/v1/runs/{run['id']}/cancel", headers=AUTH)
        assert twice.status_code == 409
        assert twice.json()["error"]["status"] == "cancelled"

        # The event stream of an ended run ends.
        tail = await read_events(client, f"/v1/runs/{run['id']}/events", headers=AUTH)
        assert tail[-1][1] == "end" and tail[-1][2]["status"] == "cancelled"
        late = await client.get(
            f"/v1/runs/{run['id']}/credentials",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert late.status_code in (409, 410)


async def test_a_run_to_its_end(tmp_path: Path, runway_hangs_up: RunwayEmulator) -> None:
    async with service(f"sqlite:///{tmp_path / 'r.sqlite'}", runway_hangs_up) as client:
        # No API key configured: server-to-server endpoints ask for none (loopback).
        created = await client.post("/v1/runs", json={"state": {"order_id": "B7"}})
        assert created.status_code == 202
        run_id = created.json()["id"]
        events = await read_events(client, f"/v1/runs/{run_id}/events")
        types = [data["type"] for _, _, data in events[:-1]]
        assert types[-1] == "graph.ended" and events[-1][1] == "end"
        assert events[-1][2] == {"id": run_id, "status": "succeeded"}
        assert "transcript.done" in types and "ended" in types
        assert types.index("node.finished") > types.index("ended")
        assert [int(e[0]) for e in events[:-1]] == sorted({int(e[0]) for e in events[:-1]})
        final = (await client.get(f"/v1/runs/{run_id}")).json()
        assert final["status"] == "succeeded"
        assert final["state"]["log"] == ["after:completed"]
        assert final["state"]["call"]["tool_calls"][0]["name"] == "lookup_order"
        # The session has ended: its credentials are gone.
        token = created.json()["client_token"]
        late = await client.get(f"/v1/runs/{run_id}/credentials", params={"client_token": token})
        assert late.status_code in (409, 410)
        assert late.json()["error"]["code"] in ("run_ended", "session_ended")


async def test_bad_input_is_a_clear_json_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bad.sqlite'}"
    # API only (no worker here): runs stay queued, so waits expire.
    async with service(url, None, worker=False, api_key=API_KEY, max_body_bytes=2048) as client:
        seen: list[httpx.Response] = []

        async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            kwargs.setdefault("headers", AUTH)
            response = await client.request(method, path, **kwargs)
            seen.append(response)
            assert response.headers["content-type"].startswith("application/json")
            return response

        def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
            assert response.status_code == status, response.text
            body: dict[str, Any] = response.json()["error"]
            assert body["code"] == code and body["message"]
            return body

        error(await call("POST", "/v1/runs", content=b"{not json"), 400, "invalid_json")
        error(await call("POST", "/v1/runs", json=[1, 2]), 422, "invalid_body")
        body = error(
            await call("POST", "/v1/runs", json={"state": {}, "priority": 1}), 422, "unknown_keys"
        )
        assert body["keys"] == ["priority"] and "priority" in body["message"]
        body = error(
            await call("POST", "/v1/runs", json={"state": {"custmer": "x", "zzz": 1}}),
            422,
            "unknown_state_keys",
        )
        assert body["keys"] == ["custmer", "zzz"] and "'custmer'" in body["message"]
        body = error(
            await call("POST", "/v1/runs", json={"state": {"customer": ["not", "a", "str"]}}),
            422,
            "invalid_state",
        )
        assert body["details"][0]["loc"] == ["customer"]
        error(await call("POST", "/v1/runs", json={"state": "x"}), 422, "invalid_state")
        error(
            await call("POST", "/v1/runs", json={"idempotency_key": 7}),
            422,
            "invalid_idempotency_key",
        )
        big = {"state": {"customer": "x" * 5000}}
        error(await call("POST", "/v1/runs", json=big), 413, "body_too_large")

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 1024  # no Content-Length: the limit still holds

        error(await call("POST", "/v1/runs", content=chunks()), 413, "body_too_large")

        unknown = "run_" + "0" * 24
        error(await call("GET", f"/v1/runs/{unknown}"), 404, "not_found")
        error(await call("GET", "/v1/runs/not-a-run"), 404, "not_found")
        error(await call("POST", f"/v1/runs/{unknown}/cancel"), 404, "not_found")
        error(await call("GET", f"/v1/runs/{unknown}/events"), 404, "not_found")
        error(await call("GET", "/v1/nothing"), 404, "not_found")
        error(await call("DELETE", "/v1/runs"), 405, "method_not_allowed")

        first = (await call("POST", "/v1/runs", json={"state": {}})).json()
        second = (await call("POST", "/v1/runs", json={})).json()
        assert first["id"] != second["id"] and first["client_token"] != second["client_token"]
        creds = f"/v1/runs/{first['id']}/credentials"
        own = {"Authorization": f"Bearer {first['client_token']}"}
        other = {"Authorization": f"Bearer {second['client_token']}"}
        error(await call("GET", creds, headers={}), 401, "unauthorized")
        error(await call("GET", creds, headers=other), 403, "forbidden")
        error(await call("GET", creds, params={"client_token": "ct_forged"}, headers={}), 403,
              "forbidden")  # fmt: skip
        error(await call("GET", f"/v1/runs/{first['id']}", headers=own), 401, "unauthorized")
        error(await call("GET", creds, params={"wait": "soon"}, headers=own), 422, "invalid_wait")
        error(await call("GET", creds, params={"wait": "-1"}, headers=own), 422, "invalid_wait")
        error(await call("GET", creds, params={"wait": "1e9"}, headers=own), 422, "invalid_wait")
        body = error(
            await call("GET", creds, params={"wait": "0.3"}, headers=own), 408, "wait_expired"
        )
        assert body["status"] == "queued"
        events = f"/v1/runs/{first['id']}/events"
        error(await call("GET", events, headers=other), 403, "forbidden")
        error(await call("GET", events, headers={**AUTH, "Last-Event-ID": "x"}), 422,
              "invalid_last_event_id")  # fmt: skip

        # Cancelling a queued run: it never starts.
        cancelled = await call("POST", f"/v1/runs/{first['id']}/cancel")
        assert cancelled.status_code == 202
        assert (await call("GET", f"/v1/runs/{first['id']}")).json()["status"] == "cancelled"
        error(await call("GET", creds, headers=own), 409, "run_ended")

        assert all(r.status_code < 500 for r in seen)
        assert all(API_KEY not in r.text for r in seen)


async def test_health_readiness_and_openapi(tmp_path: Path) -> None:
    async with service(f"sqlite:///{tmp_path / 'h.sqlite'}", None, api_key=API_KEY) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "database": "ok", "workers": "embedded"}
        schema = (await client.get("/openapi.json")).json()
        assert schema == json.loads(json.dumps(openapi_schema()))
        assert {"/v1/runs", "/v1/runs/{run_id}/credentials", "/v1/webhooks/openai"} <= set(
            schema["paths"]
        )


async def test_readiness_without_live_workers_on_postgres(postgres_url: str) -> None:
    async with service(postgres_url, None, worker=False) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not_ready", "database": "ok", "workers": 0}


async def test_api_only_service_with_a_worker_process_on_postgres(
    postgres_url: str, runway_stays: RunwayEmulator
) -> None:
    """The deployment shape: ``serve --no-worker`` here, ``masquerade worker`` apart.
    Credentials, events and cancellation cross the process boundary through Postgres."""
    worker = WorkerProcess(
        "service_graphs.py:graph", postgres_url, "svc-worker", env=runway_stays.environ()
    ).start()
    try:
        async with service(postgres_url, None, worker=False, api_key=API_KEY) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["workers"] == 1
            run = (await client.post("/v1/runs", json={}, headers=AUTH)).json()
            token = {"Authorization": f"Bearer {run['client_token']}"}
            answer = await client.get(
                f"/v1/runs/{run['id']}/credentials", params={"wait": 30}, headers=token
            )
            assert answer.status_code == 200, answer.text
            session_id = answer.json()["credentials"]["sessionId"]
            events = await read_events(
                client, f"/v1/runs/{run['id']}/events", headers=token, until="tool.result"
            )
            assert events[-1][2]["output"] == {"order_id": "A1001", "status": "shipped"}
            # Cancelled here, stopped there: the worker notices and ends the live call.
            cancelled = await client.post(f"/v1/runs/{run['id']}/cancel", headers=AUTH)
            assert cancelled.status_code == 202
            assert (await wait_status(client, run["id"], "cancelled"))["status"] == "cancelled"
            with anyio.fail_after(30):
                while not RunwayEmulator.terminal(runway_stays.session(session_id)["status"]):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            tail = await read_events(client, f"/v1/runs/{run['id']}/events", headers=token)
            assert tail[-1][1] == "end" and tail[-1][2]["status"] == "cancelled"
    finally:
        worker.stop()
