"""Packaging and configuration: the entry points, the CLI emulator, options and URLs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from masquerade import ConfigurationError, Host, SessionRequest
from masquerade_openai import OpenAIRealtimeProvider, RealtimeOptions
from masquerade_openai._options import audio_format, websocket_url


def test_entry_point_registers_the_openai_provider() -> None:
    host = Host(environ={})
    provider = host.providers["openai"]
    assert isinstance(provider, OpenAIRealtimeProvider)
    assert provider.tool_dialect == "openai"
    assert provider.requires_polling is False
    info = {p.name: p for p in host.plugin_info()}["openai"]
    assert info.status == "loaded"
    assert info.distribution == "masquerade-openai"


def test_options_layers_and_derived_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    provider = OpenAIRealtimeProvider(api_key="k" * 20, voice="ash",
                                      renewal={"max_reconnects": 2})
    request = SessionRequest(provider="openai", model="gpt-realtime-mini",
                             options={"voice": "marin", "renewal": {"attempts": 2}})
    options = provider.options_for(request)
    assert options.voice == "marin"
    assert options.resolved_model == "gpt-realtime-mini"
    assert options.renewal.max_reconnects == 2
    assert options.renewal.attempts == 2
    assert websocket_url(options) == "wss://api.openai.com/v1/realtime?model=gpt-realtime-mini"
    local = RealtimeOptions.build({"base_url": "http://127.0.0.1:8000/v1/", "call_id": "rtc_1"})
    assert websocket_url(local) == "ws://127.0.0.1:8000/v1/realtime?call_id=rtc_1"
    monkeypatch.setenv("OPENAI_BASE_URL", "https://proxy.example/v1")
    assert websocket_url(RealtimeOptions()).startswith("wss://proxy.example/v1/realtime?")
    assert websocket_url(RealtimeOptions(websocket_url="wss://x.example/rt")) == (
        "wss://x.example/rt?model=gpt-realtime"
    )


def test_audio_formats_and_turn_detection() -> None:
    assert audio_format("pcm16") == {"type": "audio/pcm", "rate": 24000}
    assert audio_format("g711_ulaw") == {"type": "audio/pcmu"}
    assert audio_format({"type": "audio/pcma"}) == {"type": "audio/pcma"}
    with pytest.raises(ConfigurationError, match="unknown audio format"):
        audio_format("mp3")
    sip = RealtimeOptions(call_id="rtc_1", output_audio_format="g711_alaw")
    payload = sip.session_payload("hi")
    assert "format" not in payload["audio"]["input"]
    assert payload["audio"]["output"]["format"] == {"type": "audio/pcma"}
    assert sip.output_bytes_per_ms() == 8.0
    manual = RealtimeOptions(turn_detection=None)
    assert manual.session_payload(None)["audio"]["input"]["turn_detection"] is None
    assert manual.server_interrupts is False
    assert RealtimeOptions().server_interrupts is True
    assert RealtimeOptions(turn_detection={"type": "server_vad",
                                           "interrupt_response": False}).server_interrupts is False
    with pytest.raises(ConfigurationError, match="turn detection"):
        RealtimeOptions(turn_detection="loud").session_payload(None)
    extra = RealtimeOptions(session={"tracing": "auto", "audio": {"output": {"speed": 1.2}}})
    merged = extra.session_payload(None)
    assert merged["tracing"] == "auto"
    assert merged["audio"]["output"] == {"voice": "alloy", "speed": 1.2,
                                         "format": {"type": "audio/pcm", "rate": 24000}}


def test_cli_emulator_accepts_only_its_key(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": [{"match": "hello", "say": "Hi from the CLI."}]}))
    cli = Path(sys.executable).parent / "masquerade"
    process = subprocess.Popen(
        [str(cli), "emulate", "openai", "--port", "0", "--api-key", "emu_cli_key_0123456789",
         "--script", str(script)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "openai emulator listening on http://127.0.0.1:" in line, line
        base_url = line.rsplit(" ", 1)[1].strip()
        assert process.stdout.readline().strip() == "api key: emu_cli_key_0123456789"
        import anyio
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        async def check() -> str:
            url = base_url.replace("http://", "ws://") + "/realtime?model=gpt-realtime"
            with pytest.raises(InvalidStatus) as info:
                await connect(url, additional_headers={"Authorization": "Bearer emu_other_key"})
            assert info.value.response.status_code == 401
            async with connect(url, additional_headers={
                "Authorization": "Bearer emu_cli_key_0123456789"
            }) as ws:
                created = json.loads(await ws.recv())
                await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                    "type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": "hello"}]}}))
                await ws.send(json.dumps({"type": "response.create",
                                          "response": {"output_modalities": ["text"]}}))
                while True:
                    event = json.loads(await ws.recv())
                    if event["type"] == "response.output_text.done":
                        return str(event["text"]) + "|" + created["type"]

        assert anyio.run(check) == "Hi from the CLI.|session.created"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait(5)
    output = (process.stdout.read() if process.stdout else "") + (
        process.stderr.read() if process.stderr else ""
    )
    assert "Traceback" not in output


def test_cli_lists_the_openai_emulator() -> None:
    cli = Path(sys.executable).parent / "masquerade"
    out = subprocess.run([str(cli), "emulate"], capture_output=True, text=True, timeout=60)
    assert "openai\tmasquerade_openai.emulator:serve" in out.stdout


def test_an_instance_replaces_the_installed_plugin() -> None:
    from masquerade import Host
    from masquerade_openai import OpenAIRealtimeProvider

    provider = OpenAIRealtimeProvider(api_key="sk-test-" + "x" * 24, base_url="http://127.0.0.1:9")
    host = Host(plugins=[provider], environ={})
    assert host.providers["openai"] is provider
    assert not [i for i in host.plugin_info() if i.status == "failed"]
