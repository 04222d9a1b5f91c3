"""A recorded beta event stream still replays: legacy names map to the same normalized
events as their GA renames."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import masquerade_openai
from masquerade import Host, SessionRequest
from masquerade_openai import OpenAIRealtimeProvider
from masquerade_openai.emulator import OpenAIRealtimeEmulator

from .helpers import collect, count

pytestmark = pytest.mark.anyio

BETA = [json.loads(line) for line in
        (Path(__file__).parent / "data" / "beta_stream.jsonl").read_text().splitlines()]
RENAMES = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}


def as_ga(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "type": RENAMES.get(event["type"], event["type"])}


def normalized(events: list[Any]) -> list[tuple[Any, ...]]:
    """The normalized stream without the raw provider events (whose names differ)."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        if e.type == "audio.delta":
            out.append((e.type, e.response_id, e.item_id, len(e.audio)))
        elif e.type in ("transcript.delta", "transcript.done"):
            out.append((e.type, e.role, e.text, e.turn))
        elif e.type in ("response.started", "response.done"):
            out.append((e.type, e.response_id, getattr(e, "status", None),
                        json.dumps(getattr(e, "usage", None))))
        elif e.type == "error":
            out.append((e.type, e.code))
    return out


async def replay(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host: Host,
    stream: list[dict[str, Any]],
) -> tuple[list[Any], masquerade_openai.OpenAIRealtimeSession]:
    async with host.session(SessionRequest(provider="openai")) as s:
        rt = await masquerade_openai.wait_realtime(s)
        for event in stream[1:]:  # the session itself was created by the emulator
            emulator.inject(json.dumps(event))
        events = await collect(s, count("response.done", 2))
        s.end()
    return events, rt


async def test_beta_stream_normalizes_like_its_ga_twin(
    emulator: OpenAIRealtimeEmulator,
    provider: OpenAIRealtimeProvider,
    host_for: Callable[..., Host],
) -> None:
    async with host_for(provider) as host:
        beta_events, beta_rt = await replay(emulator, provider, host, BETA)
        ga_events, ga_rt = await replay(emulator, provider, host, [as_ga(e) for e in BETA])
    beta, ga = normalized(beta_events), normalized(ga_events)
    assert beta == ga
    # And the mapping is the expected one.
    assert ("transcript.done", "assistant", "Hello there friend", "item_a1") in beta
    assert ("transcript.done", "assistant", "Just text", "item_a2") in beta
    assert [x for x in beta if x[0] == "audio.delta"] == [
        ("audio.delta", "resp_b1", "item_a1", 4800)
    ] * 3
    assert not [x for x in beta if x[0] == "error"]
    # The conversation store reads the beta stream too.
    for rt in (beta_rt, ga_rt):
        items = {i.id: i for i in rt.items()}
        assert items["item_u1"].text == "Hi there"
        assert items["item_a1"].transcript == "Hello there friend"
        assert items["item_a1"].audio_ms() == 300
        assert items["item_a2"].text == "Just text"
