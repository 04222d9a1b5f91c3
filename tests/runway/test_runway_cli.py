"""``masquerade runway ...``: offered by the plugin through ``masquerade_register_commands``
(the core command line knows nothing about Runway), run against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from masquerade.cli import main
from masquerade_runway.emulator import RunwayEmulator

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
)


@pytest.fixture
def cli(
    emulator: RunwayEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):  # type: ignore[no-untyped-def]
    for name, value in emulator.environ().items():
        monkeypatch.setenv(name, value)

    def run(*args: str) -> tuple[int, str]:
        code = main(["runway", *args])
        captured = capsys.readouterr()
        return code, captured.out if code == 0 else captured.err

    return run


def test_avatars_and_documents_from_the_command_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "faq.md").write_text("# Returns\nWithin 30 days.")
    (tmp_path / "ada.png").write_bytes(PNG)
    code, out = cli("documents", "create", "--name", "FAQ", "--file", str(tmp_path / "faq.md"))
    assert code == 0
    document_id = out.strip()
    code, out = cli(
        "avatars", "create", "--name", "Ada", "--personality", "You are Ada.",
        "--image", str(tmp_path / "ada.png"), "--voice", "clara",
        "--document", document_id, "--wait",
    )  # fmt: skip
    assert code == 0
    avatar_id = out.strip()
    code, out = cli("avatars", "list")
    assert f"{avatar_id}  READY  Ada" in out.splitlines()
    code, out = cli("avatars", "get", avatar_id)
    assert json.loads(out)["documentIds"] == [document_id]
    code, out = cli("avatars", "update", avatar_id, "--voice", "leo", "--start-script", "Hi!")
    assert json.loads(out)["voice"]["presetId"] == "leo"
    code, out = cli("documents", "list")
    assert f"{document_id}  Ada  FAQ" in out.splitlines()
    code, out = cli("documents", "list", "--json")
    assert {d["id"] for d in json.loads(out)} >= {document_id}
    code, out = cli("documents", "get", document_id)
    assert json.loads(out)["content"] == "# Returns\nWithin 30 days."
    code, out = cli("avatars", "usage", "--start", "2020-01-01", "--end", "2020-01-03")
    assert [day["date"] for day in json.loads(out)["byDay"]] == ["2020-01-01", "2020-01-02"]
    assert cli("documents", "delete", document_id) == (0, f"deleted {document_id}\n")
    assert cli("avatars", "delete", avatar_id) == (0, f"deleted {avatar_id}\n")
    code, err = cli("avatars", "get", avatar_id)
    assert code == 1
    assert "error:" in err
    assert "404" in err
    code, err = cli("avatars", "usage", "--start", "2020-01-01", "--end", "2021-01-01")
    assert code == 1
    assert "at most 90 days" in err


def test_conversations_from_the_command_line(  # type: ignore[no-untyped-def]
    cli, emulator: RunwayEmulator, tmp_path: Path
) -> None:
    import anyio

    from masquerade_runway import RunwayClient

    emulator.plan_next(script=[{"say": "Hello"}, {"hangup": True}])

    async def one_call() -> str:
        async with RunwayClient(emulator.api_key, base_url=emulator.base_url) as client:
            sid = await client.create_realtime_session(
                {"model": "gwm1_avatars",
                 "avatar": {"type": "runway-preset", "presetId": "influencer"}}
            )  # fmt: skip
            with anyio.fail_after(10):
                while True:
                    status = await client.retrieve_realtime_session(sid)
                    if status.status == "READY":
                        break
                    await anyio.sleep(0.01)
            credentials = await client.connect_backend(sid)  # the simulated user joins too
            from masquerade_runway import EmulatorRoom

            room = EmulatorRoom()
            await room.connect(credentials.url, credentials.token.get_secret_value())
            await room.wait_closed()
            with anyio.fail_after(10):
                while True:
                    conversation = await client.retrieve_avatar_conversation(sid)
                    if conversation.status != "in_progress":
                        return sid
                    await anyio.sleep(0.01)

    sid = anyio.run(one_call)
    target = tmp_path / "call.mp4"
    code, out = cli("conversations", "download", sid, str(target))
    assert code == 0
    assert out == f"wrote {target.stat().st_size} bytes to {target}\n"
    assert cli("conversations", "delete", sid)[0] == 0
    code, err = cli("conversations", "download", sid, str(target))
    assert code == 1
    assert "404" in err or "not found" in err.lower()


def test_the_core_names_no_plugin_in_its_command_line() -> None:
    from masquerade.cli import COMMANDS

    assert "runway" not in dict(COMMANDS)  # it comes from the plugin's hook
    source = Path(__import__("masquerade.cli").cli.__file__).read_text()
    assert "masquerade_runway" not in source
