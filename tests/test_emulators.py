"""A third-party provider plugin offers its emulator through ``masquerade_register_emulators``
and gets everything the built-in providers get: ``masquerade emulate``, ``masquerade demo
--provider`` and the offline mode of ``masquerade run``, with no change to the core."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from masquerade import Host
from masquerade.cli import main
from masquerade.cli._emulate import available_emulators

from .plugin_dist import install_distribution

# A provider whose sessions fetch their conversation from its emulator over a loopback
# TCP socket (one line: the API key; the answer: the script as JSON, or "401"), then play
# it with the public ScriptedProvider. Nothing in masquerade knows its name.
PARROT = '''
import json
import os
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import SocketAttribute

from masquerade import hookimpl
from masquerade.errors import ProviderError
from masquerade.provider import Emulator
from masquerade.testing import ScriptedProvider

OFFLINE = [{"say": "Squawk! Offline and fine."}, {"hangup": True}]


async def _line(stream: Any) -> bytes:
    data = b""
    while not data.endswith(b"\\n"):
        data += await stream.receive()
    return data


async def serve(*, host: str, port: int, api_key: str, ready: Callable[[str], None],
                script: str | None = None) -> None:
    data = json.loads(open(script).read()) if script else OFFLINE
    steps = data["steps"] if isinstance(data, dict) else data
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)

    async def handle(stream: Any) -> None:
        async with stream:
            key = (await _line(stream)).decode().strip()
            answer = json.dumps(steps) if key == api_key else "401"
            await stream.send(answer.encode() + b"\\n")

    async with listener:
        ready(f"tcp://{host}:{listener.extra(SocketAttribute.local_port)}")
        await listener.serve(handle)


class ParrotProvider:
    name = "parrot"
    tool_dialect = "openai"

    async def create(self, request: Any) -> Any:
        url = os.environ.get("PARROT_BASE_URL", "")
        key = os.environ.get("PARROT_API_KEY", "")
        if not url.startswith("tcp://"):
            raise ProviderError("PARROT_BASE_URL is not set")
        host, port = url.removeprefix("tcp://").rsplit(":", 1)
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(key.encode() + b"\\n")
            answer = await _line(stream)
        if answer.strip() == b"401":
            raise ProviderError("the parrot service refused the key")
        return await ScriptedProvider(json.loads(answer), name="parrot").create(request)


def demo_script(steps: Any, pace: float) -> dict[str, Any]:
    return {"steps": list(steps), "pace": pace}


@hookimpl
def masquerade_register_providers(register: Any) -> None:
    register(ParrotProvider())


@hookimpl
def masquerade_register_emulators(register: Any) -> None:
    register(Emulator(
        "parrot",
        __name__ + ":serve",
        key_env="PARROT_API_KEY",
        base_url_env="PARROT_BASE_URL",
        title="Parrot",
        demo_script=demo_script,
    ))
'''

GRAPH = """
from pydantic import BaseModel

from masquerade import END, START, AvatarNode, Graph, SessionResult


class State(BaseModel):
    call: SessionResult | None = None


graph = Graph(State, name="parrot-call")
graph.add_node("call", AvatarNode("parrot", output_key="call"))
graph.add_edge(START, "call")
graph.add_edge("call", END)
"""


@pytest.fixture
def parrot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The plugin, installed as a real distribution; returns its package name."""
    for name in ("MASQUERADE_PLUGINS", "MASQUERADE_DISABLE_PLUGINS", "PARROT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PARROT_BASE_URL", raising=False)
    _, package = install_distribution(
        tmp_path / "site", monkeypatch, {"plugin": PARROT}, {"parrot": "plugin"}
    )
    return package


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_the_host_collects_emulators_from_plugins(parrot: str) -> None:
    emulators = Host().emulators
    assert emulators["parrot"].target == f"{parrot}.plugin:serve"
    assert emulators["parrot"].display_name == "Parrot"
    # The built-in providers' plugins offer theirs the same way.
    assert emulators["runway"].key_env == "RUNWAYML_API_SECRET"
    assert emulators["openai"].base_url_env == "OPENAI_BASE_URL"
    assert set(available_emulators()) >= {"parrot", "runway", "openai"}
    # A disabled plugin offers nothing.
    assert "parrot" not in Host(environ={"MASQUERADE_DISABLE_PLUGINS": "parrot"}).emulators


def test_emulate_lists_a_third_party_emulator(
    parrot: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulate"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert f"parrot\t{parrot}.plugin:serve" in listed
    assert "runway\tmasquerade_runway.emulator:serve" in listed


def test_demo_plays_on_a_third_party_emulator(
    parrot: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--provider", "parrot", "--json", "--pace", "0"])
    out, err = capsys.readouterr()

    assert code == 0, err
    events = json_lines(out)
    assert events[0]["type"] == "demo"
    assert events[0]["provider"] == "parrot"
    assert events[0]["message"].startswith(
        "PARROT_API_KEY is not set: running the Parrot emulator in-process at tcp://127.0.0.1:"
    )
    calls = [e["name"] for e in events if e["type"] == "tool.call"]
    assert calls == ["lookup_order", "book_slot", "book_slot", "book_slot"]
    assert events[-1]["state"]["ticket"]["booked_slot"] == "Monday 10:00"
    assert "PARROT_API_KEY" not in os.environ  # the emulator's key was only for the run


def test_offline_run_starts_a_third_party_emulator(
    parrot: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "parrot_graph.py"
    path.write_text(GRAPH)

    code = main(["run", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    events = json_lines(out)
    assert events[0]["type"] == "emulator"
    assert events[0]["provider"] == "parrot"
    assert events[0]["reason"] == "PARROT_API_KEY is not set"
    said = [e["text"] for e in events if e["type"] == "transcript.done"]
    assert said == ["Squawk! Offline and fine."]

    # A key that the emulator does not know: online, the provider is refused...
    monkeypatch.setenv("PARROT_API_KEY", "not-the-emulators-key")
    monkeypatch.setenv("PARROT_BASE_URL", events[0]["base_url"])  # no longer listening
    assert main(["run", str(path), "--json", "--online"]) == 1
    capsys.readouterr()
    # ...and --offline runs the emulator anyway, with a key of its own.
    assert main(["run", str(path), "--json", "--offline"]) == 0
    events = json_lines(capsys.readouterr().out)
    assert events[0]["reason"] == "--offline"
    assert os.environ["PARROT_API_KEY"] == "not-the-emulators-key"  # restored


def test_demo_names_a_provider_nobody_emulates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--provider", "nobody"]) == 1
    err = capsys.readouterr().err
    assert "no installed plugin offers an emulator for 'nobody'" in err
    assert "masquerade emulate" in err
