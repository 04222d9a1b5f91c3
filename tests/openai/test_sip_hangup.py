"""A SIP caller hanging up while the sideband websocket is still being attached: the call
ended, which is no failure and nothing to retry."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from masquerade import Host, Session, SessionRequest, SessionResult, hookimpl
from masquerade.events import BaseEvent
from masquerade_openai import OpenAIRealtimeProvider, RealtimeCalls
from masquerade_openai.emulator import OpenAIRealtimeEmulator
from masquerade_openai.emulator._realtime import RealtimeServerSession

pytestmark = pytest.mark.anyio


class Watch:
    """Every event of the session, and how often its cancel path reported the end."""

    def __init__(self) -> None:
        self.events: list[BaseEvent] = []
        self.ended = 0

    @hookimpl
    def masquerade_session_event(self, session: Session, event: BaseEvent) -> None:
        self.events.append(event)

    @hookimpl
    def masquerade_session_ended(self, session: Session, result: SessionResult) -> None:
        self.ended += 1


def hang_up_on_the_configuring_update(
    emulator: OpenAIRealtimeEmulator, monkeypatch: pytest.MonkeyPatch
) -> threading.Event:
    """The caller hangs up the moment the sideband's configuring ``session.update``
    arrives, so the client is waiting for ``session.updated`` (mid-handshake) when the
    server closes with 1000 "call ended". Returns an event set once that happened."""
    hung_up = threading.Event()
    original = RealtimeServerSession.handle

    async def handle(self: RealtimeServerSession, message: str | bytes) -> None:
        try:
            kind = json.loads(message).get("type")
        except (ValueError, AttributeError):
            kind = None
        if kind == "session.update" and self.call is not None and not hung_up.is_set():
            hung_up.set()
            await emulator._app.desk.end_call(self.call, "ended", by="caller")
            return
        await original(self, message)

    monkeypatch.setattr(RealtimeServerSession, "handle", handle)
    return hung_up


async def test_caller_hangup_during_the_sideband_handshake_ends_the_call(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call_id = emulator.new_call()
    async with RealtimeCalls(api_key=emulator.api_key, base_url=emulator.base_url) as calls:
        assert await calls.accept(call_id)
    hung_up = hang_up_on_the_configuring_update(emulator, monkeypatch)
    watch = Watch()
    request = SessionRequest(provider="openai", options={"call_id": call_id})
    async with host_for(provider_for(), watch) as host:
        with anyio.fail_after(30):  # a hang fails; never a timing assertion
            result = await host.run_session(request)

    assert hung_up.is_set(), "the scenario did not happen: the handshake was never cut"
    # The truth: the caller hung up, the call is over. Not a failure.
    assert emulator.calls[call_id].hung_up_by == "caller"
    assert (result.outcome, result.failure, result.error) == ("completed", None, None)
    assert (result.extra["close_code"], result.extra["close_reason"]) == (1000, "call ended")
    closed = [e for e in watch.events
              if e.type == "provider" and getattr(e, "name", None) == "connection.closed"]
    assert [e.payload for e in closed] == [{"code": 1000, "reason": "call ended"}]
    assert not [e for e in watch.events if e.type == "error"]
    assert [e.type for e in watch.events].count("ended") == 1
    assert watch.events[-1].type == "ended"
    # The cancel path ran once, and nothing was tried again: one sideband, no reconnect,
    # at most one hang-up request (the call had already ended).
    assert watch.ended == 1
    assert len(emulator.connections) == 1
    assert result.extra["reconnects"] == 0
    hangups: list[Any] = [r for r in emulator.http_requests
                          if r == ("POST", f"/v1/realtime/calls/{call_id}/hangup")]
    assert len(hangups) <= 1


async def test_a_plain_session_closed_during_the_handshake_still_fails(
    emulator: OpenAIRealtimeEmulator,
    provider_for: Callable[..., OpenAIRealtimeProvider],
    host_for: Callable[..., Host],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Off a call, a server closing during the handshake is a refusal: reported, loud."""
    closed = threading.Event()
    original = RealtimeServerSession.handle

    async def handle(self: RealtimeServerSession, message: str | bytes) -> None:
        if b"session.update" in (message if isinstance(message, bytes) else message.encode()):
            closed.set()
            self.conn.start_close(1000, "")
            return
        await original(self, message)

    monkeypatch.setattr(RealtimeServerSession, "handle", handle)
    async with host_for(provider_for()) as host:
        with anyio.fail_after(30):
            result = await host.run_session(SessionRequest(provider="openai"))
    assert closed.is_set()
    assert result.outcome == "failed"
    assert "during the handshake (code 1000)" in (result.failure or "")
