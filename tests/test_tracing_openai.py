"""Tracing a real OpenAI Realtime session (the plugin against its loopback emulator):
responses become ``realtime_inference`` spans, a barge-in is not an error, tool calls run
inside their spans, and the realtime session id is the server's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from masquerade import Host, SessionRequest

from .otel_helpers import NO_BUILTIN_TRACING, Otel

masquerade_openai = pytest.importorskip("masquerade_openai")
emulator_module = pytest.importorskip("masquerade_openai.emulator")

from .emulator_helpers import OPENAI_FAST as FAST  # noqa: E402
from .openai.helpers import collect, count, lookup_order  # noqa: E402

pytestmark = pytest.mark.anyio

SPEECH = b"\x10\x20" * 2400  # 100 ms of non-silent PCM16


@pytest.fixture
def emulator() -> Iterator[Any]:
    with emulator_module.OpenAIRealtimeEmulator() as emu:
        yield emu


@pytest.fixture
def otel() -> Iterator[Otel]:
    handle = Otel()
    yield handle
    handle.shutdown()


def host_for(emulator: Any, otel: Otel, fast_poller: Any) -> Host:
    return Host(
        plugins=[emulator.provider(**FAST), otel.plugin()],
        load_entrypoints=False,
        poller=fast_poller,
        environ=NO_BUILTIN_TRACING,
    )


async def test_responses_and_tools_of_a_realtime_session(
    emulator: Any, otel: Otel, fast_poller: Any
) -> None:
    request = SessionRequest(provider="openai", model="gpt-realtime", tools=[lookup_order])
    async with host_for(emulator, otel, fast_poller) as host, host.session(request) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_text('call lookup_order {"order_id": "A1001"}')
        await collect(s, count("response.done", 2))
        s.end()
    assert s.result is not None
    root = otel.one("invoke_agent")
    attrs = dict(root.attributes or {})
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-realtime"
    # OpenAI's session id names the connection, not a conversation.
    assert attrs["gen_ai.realtime_session.id"] == s.result.provider_session_id
    assert "gen_ai.conversation.id" not in attrs
    responses = otel.named("realtime_inference")
    assert len(responses) == 2
    for span in responses:
        assert span.name == "realtime_inference gpt-realtime"
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == root.context.span_id
        assert span.attributes["gen_ai.response.id"]  # type: ignore[index]
        assert span.status.status_code is StatusCode.UNSET
    (tool,) = otel.named("execute_tool")
    assert tool.name == "execute_tool lookup_order"
    assert tool.parent is not None
    assert tool.parent.span_id == root.context.span_id
    assert tool.attributes["gen_ai.tool.call.id"] == s.result.tool_calls[0].call_id  # type: ignore[index]


async def test_barge_in_ends_the_response_span_without_an_error(
    emulator: Any, otel: Otel, fast_poller: Any
) -> None:
    emulator.script = {
        # ~6 s of paced audio: the interruption always lands mid-response
        "rules": [{"match": "story", "say": " ".join(["word"] * 200)}], "pace": 0.01
    }
    async with host_for(emulator, otel, fast_poller) as host, host.session(
        SessionRequest(provider="openai")
    ) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.send_text("tell me a story")
        await collect(s, count("audio.delta", 5))
        await rt.send_audio(SPEECH)  # server VAD: the user talks over the model
        await collect(s, count("response.done"))
        s.end()
    (response,) = otel.named("realtime_inference")
    assert response.status.status_code is StatusCode.UNSET
    assert response.attributes["masquerade.response.status"] == "cancelled"  # type: ignore[index]
    assert response.attributes["gen_ai.response.finish_reasons"] == ("turn_detected",)  # type: ignore[index]
    root = otel.one("invoke_agent")
    assert "masquerade.user.speech_started" in [e.name for e in root.events]


async def test_a_browser_call_is_traced_on_its_sideband(
    emulator: Any, otel: Otel, fast_poller: Any
) -> None:
    from .openai.test_browser import OFFER

    request = SessionRequest(provider="openai", tools=[lookup_order],
                             options={"transport": "webrtc"})
    async with host_for(emulator, otel, fast_poller) as host, host.session(request) as s:
        rt = await masquerade_openai.wait_realtime(s)
        await rt.answer_offer(OFFER)
        await collect(s, count("ready"))
        emulator.speak('call lookup_order {"order_id": "A1001"}')
        await collect(s, count("response.done", 2))
        s.end()
    assert s.result is not None
    root = otel.one("invoke_agent")
    assert dict(root.attributes or {})["gen_ai.provider.name"] == "openai"
    assert len(otel.named("realtime_inference")) == 2
    (tool,) = otel.named("execute_tool")
    assert tool.parent is not None and tool.parent.span_id == root.context.span_id
