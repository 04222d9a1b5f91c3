"""The backend's side of the call service example: start a call, hand out the join link,
follow the run to its end.

    MASQUERADE_API_KEY=... python examples/service/start_call.py http://127.0.0.1:8765

Prints the link the frontend opens (the page served from ``examples/service/static``),
then each event of the run as it happens, then the final state. Without a URL it starts
``masquerade serve examples/service/app.py`` itself (a free port, runs kept in a
temporary directory) and stops it at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx


def main(base: str) -> int:
    key = os.environ.get("MASQUERADE_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        created = client.post(
            "/v1/runs",
            json={"state": {"customer": "Ada"}, "idempotency_key": f"example-{uuid.uuid4()}"},
        )
        created.raise_for_status()
        run = created.json()
        # The client token opens this run's credentials and events only: give it to the
        # frontend, never the API key.
        print(f"join: {base}/static/index.html?run={run['id']}&token={run['client_token']}")
        with client.stream("GET", f"/v1/runs/{run['id']}/events") as events:
            for line in events.iter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if "type" in event:
                        print("event:", event["type"], event.get("text", ""))
        final = client.get(f"/v1/runs/{run['id']}").json()
        print("status:", final["status"])
        print("summary:", final["state"]["summary"])
    return 0 if final["status"] == "succeeded" else 1


def with_a_service() -> int:
    """Start ``masquerade serve`` on a free port, run :func:`main` against it, stop it."""
    here = Path(__file__).resolve().parent
    os.environ.setdefault("MASQUERADE_API_KEY", secrets.token_urlsafe(24))
    with tempfile.TemporaryDirectory(prefix="masquerade-service-") as workdir:
        server = subprocess.Popen(
            [sys.executable, "-m", "masquerade.cli", "serve", str(here / "app.py"),
             "--port", "0", "--static", str(here / "static")],
            cwd=workdir, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            line = server.stdout.readline()  # "serving app.py:graph at http://...:PORT/ ..."
            if " at http" not in line:
                print("masquerade serve did not start", file=sys.stderr)
                return 1
            return main(line.split(" at ", 1)[1].split("/ ", 1)[0])
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]) if len(sys.argv) > 1 else with_a_service())
