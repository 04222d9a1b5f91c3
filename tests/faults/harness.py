"""The fault-injection harness: run one session against an emulator and check the
guarantees every scenario must keep.

Guarantees checked for every scenario (``check``):

* **answers**: every ``tool.call`` has exactly one ``tool.result`` (same ``call_id``), no
  result without a call, and the session's records say what the events said;
* **events**: every event validates against its own model, ``ended`` is the last event
  and comes exactly once;
* **cancel path**: ``masquerade_session_ended`` ran exactly once, and the provider was
  told to end at most once per way (one ``END_CALL``, at most one accepted ``DELETE``);
* **provider side**: the provider's own record of the session is final (Runway: a
  terminal status; OpenAI: the websocket is closed) unless the scenario expects a loud
  "could not end" report;
* **time**: the session ended within a generous bound (a hang fails the test; the bound
  is never a performance assertion).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from masquerade import Host, Session, SessionRequest, SessionResult, hookimpl
from masquerade.events import BaseEvent

from ..fuzz.targets import check_event

#: The default bound on one scenario: far above what any scenario needs on an idle
#: machine, so it holds under load; a hang still fails quickly enough.
BOUND = 30.0


class EndedCounter:
    """A plugin that counts ``masquerade_session_ended`` calls per session."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    @hookimpl
    def masquerade_session_ended(self, session: Session, result: SessionResult) -> None:
        self.calls[session.id] = self.calls.get(session.id, 0) + 1


@dataclass
class Run:
    """What one scenario's session did."""

    session: Session
    events: list[BaseEvent]
    ended_calls: int
    logs: list[logging.LogRecord] = field(default_factory=list)

    @property
    def result(self) -> SessionResult:
        assert self.session.result is not None, "the session has no result"
        return self.session.result

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.type == kind]

    def errors(self, code: str) -> list[Any]:
        return [e for e in self.events if e.type == "error" and e.code == code]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def run_session(
    request: SessionRequest,
    *plugins: object,
    poller: Any,
    act: Callable[[Session, list[BaseEvent]], Awaitable[None]] | None = None,
    bound: float = BOUND,
    on_event: Callable[[BaseEvent], Any] | None = None,
    read: bool = True,
) -> Run:
    """Run one session to its end within ``bound`` seconds.

    ``act(session, events)`` runs beside the reader (to end, cancel or inject things);
    with ``read=False`` nobody reads the events (a stalled subscriber is simulated by
    the scenario itself).
    """
    counter = EndedCounter()
    capture = _Capture()
    root = logging.getLogger("masquerade")
    root.addHandler(capture)
    events: list[BaseEvent] = []
    try:
        host = Host(plugins=[*plugins, counter], load_entrypoints=False, poller=poller)
        with anyio.fail_after(bound):
            async with (
                host,
                host.session(request, on_event=on_event) as session,
                anyio.create_task_group() as tg,
            ):
                if act is not None:
                    tg.start_soon(act, session, events)
                if read:
                    async for event in session.events():
                        events.append(event)
                await session.wait()
                tg.cancel_scope.cancel()
    finally:
        root.removeHandler(capture)
    if not read:
        events = session._history.copy()  # what a late subscriber would replay
    return Run(session, events, counter.calls.get(session.id, 0), capture.records)


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``predicate()`` holds (state set by another task or the emulator's
    thread), or fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - the state may live in another thread
            await anyio.sleep(0.01)


def check(run: Run, *, expect_unended: bool = False) -> None:
    """The guarantees every scenario keeps (see the module docs)."""
    events = run.events
    for event in events:
        check_event(event)
    ended = run.of("ended")
    assert len(ended) == 1, f"{len(ended)} ended events"
    assert events[-1].type == "ended", f"last event is {events[-1].type}"
    assert run.ended_calls == 1, f"masquerade_session_ended ran {run.ended_calls} times"
    calls = [e.call_id for e in run.of("tool.call")]
    results = [e.call_id for e in run.of("tool.result")]
    assert len(calls) == len(set(calls)), f"a tool.call was emitted twice: {calls}"
    assert sorted(calls) == sorted(results), f"calls {calls} vs results {results}"
    records = {r.call_id: r for r in run.result.tool_calls}
    assert set(records) == set(calls)
    for answer in run.of("tool.result"):
        record = records[answer.call_id]
        assert (record.error, record.error_type) == (answer.error, answer.error_type)
    unended = run.errors("end_failed") + run.errors("end_timeout")
    if expect_unended:
        assert unended, "an unended session must be reported"
    else:
        assert not unended, [e.message for e in unended]


def check_runway(run: Run, emulator: Any, *, expect_unended: bool = False,
                 answers: int | None = 1) -> dict[str, Any]:
    """Runway's side: a terminal status, one answer per tool call reaching the backend,
    at most one END_CALL and at most one accepted DELETE."""
    check(run, expect_unended=expect_unended)
    sid = run.result.provider_session_id
    if sid is None:
        return {}
    snapshot: dict[str, Any] = emulator.session(sid)
    if not expect_unended:
        assert emulator.terminal(snapshot["status"]), f"left {snapshot['status']} at Runway"
    end_calls = [d for _who, d in snapshot["data"]
                 if isinstance(d, dict) and d.get("type") == "END_CALL"]
    assert len(end_calls) <= 1, f"{len(end_calls)} END_CALL messages"
    deletes = [r for r in emulator.requests
               if r.method == "DELETE" and r.path == f"/v1/realtime_sessions/{sid}"
               and 200 <= r.status < 300]
    assert len(deletes) <= 1, f"{len(deletes)} accepted DELETEs"
    if answers is not None:
        for call in snapshot["tool_calls"]:
            assert call["answers"] <= answers, call
    return snapshot


async def check_openai(run: Run, emulator: Any, *, expect_unended: bool = False) -> None:
    """OpenAI's side: every function call answered exactly once with one
    ``function_call_output``; every websocket the session opened is closed at the end.

    The emulator serves from its own thread: it records a client event once *it* read
    it, and marks a connection closed once its side has seen the close, a moment after
    the client finished. The check first waits (bounded) for every connection to be
    closed, so the emulator has read everything the client sent before the answers are
    counted; a socket the client really left open still fails it."""
    check(run, expect_unended=expect_unended)
    connections = list(emulator._app.connections)
    if not expect_unended and connections:
        try:
            await emulator.wait_for(lambda: all(c.closed for c in connections), timeout=20.0)
        except TimeoutError:
            still_open = [i for i, c in enumerate(connections) if not c.closed]
            raise AssertionError(f"the websocket was left open: connections {still_open}") from None
    outputs: dict[str, int] = {}
    for connection in connections:
        here: dict[str, int] = {}  # a renewal replays answers into a *new* server session
        for event in connection.events_of("conversation.item.create"):
            item = event.get("item") or {}
            if item.get("type") == "function_call_output":
                here[item["call_id"]] = here.get(item["call_id"], 0) + 1
        assert all(n == 1 for n in here.values()), f"answered more than once: {here}"
        for call_id in here:
            outputs[call_id] = 1
    for call in run.of("tool.call"):
        assert outputs.get(call.call_id) == 1 or run.result.reason in ("cancelled", "error"), (
            f"the model was never answered for {call.call_id}"
        )
