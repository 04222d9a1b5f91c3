"""When the host calls the built-in tool invocation directly, and that it answers exactly
as the ``masquerade_tool_invoke`` chain does (the chain is forced with pluggy's hook-call
monitoring, which always gets it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest

from masquerade import Host, SessionRequest, hookimpl, tool
from masquerade.events import StatusEvent, ToolCall, ToolResult
from masquerade.session import Session
from masquerade.tools import late_answer


@tool
async def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


@tool
def shout(text: str) -> str:
    """Shout, in a worker thread."""
    return text.upper()


@tool
async def fails() -> str:
    """Raises."""
    raise ValueError("no such order")


@tool(timeout=0.05)
async def hangs() -> str:
    """Hangs past its timeout."""
    await anyio.sleep(30)
    return "late"


@tool(timeout=5)
async def hangs_long() -> str:
    """Hangs past the bound it is given."""
    await anyio.sleep(30)
    return "late"


TOOLS = [add, shout, fails, hangs, hangs_long]


class Plain:
    """A wrapper that says nothing about passing calls through."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl(wrapper=True)
    def masquerade_tool_invoke(self, call: Any, session: Any) -> Any:
        self.calls += 1
        return (yield)


class Checked(Plain):
    """A wrapper that passes the calls of some sessions through."""

    def __init__(self, passes: bool) -> None:
        super().__init__()
        self.passes = passes

    @hookimpl(wrapper=True)
    def masquerade_tool_invoke(self, call: Any, session: Any) -> Any:
        self.calls += 1
        return (yield)

    def _passes(self, session: Session) -> bool:
        return self.passes

    masquerade_tool_invoke.masquerade_passes_through = _passes  # type: ignore[attr-defined]


def started_session(host: Host) -> Session:
    """A session as a host starts it: the built-in observers have seen its first event
    (the tracing plugin, with no OpenTelemetry SDK, decides not to trace it)."""
    session = Session(host, SessionRequest(provider="none", tools=TOOLS))
    session.emit(StatusEvent(state="provisioning"))
    return session


@contextmanager
def monitored(host: Host) -> Iterator[list[str]]:
    hooks: list[str] = []

    def before(name: str, impls: Any, kwargs: Any) -> None:
        hooks.append(name)

    undo = host.pm.add_hookcall_monitoring(before, lambda *args: None)
    try:
        yield hooks
    finally:
        undo()


def test_the_builtin_is_called_directly_while_every_wrapper_passes_through(
    make_host: Callable[..., Host],
) -> None:
    host = make_host()
    session = started_session(host)
    chain = host._tool_chain
    assert chain.direct(session)
    # A session the tracing plugin has not decided about (or traces) gets the chain.
    assert not chain.direct(Session(host, SessionRequest(provider="none", tools=TOOLS)))

    plain = host.register(Plain())
    assert plain.status == "loaded" and not chain.direct(session)
    host.unregister(plain.name)
    assert chain.direct(session)

    host.pm.register(Plain(), name="behind-the-hosts-back")  # seen without Host.register
    assert not chain.direct(session)
    host.pm.unregister(name="behind-the-hosts-back")
    assert chain.direct(session)

    passing = Checked(passes=True)
    host.register(passing, "passing")
    assert chain.direct(session)
    passing.passes = False  # asked per call
    assert not chain.direct(session)
    host.unregister("passing")

    with monitored(host):
        assert not chain.direct(session)
    assert chain.direct(session)

    class Broken(Checked):
        def _passes(self, session: Session) -> bool:
            raise RuntimeError("cannot tell")

        @hookimpl(wrapper=True)
        def masquerade_tool_invoke(self, call: Any, session: Any) -> Any:
            return (yield)

        masquerade_tool_invoke.masquerade_passes_through = _passes  # type: ignore[attr-defined]

    host.register(Broken(passes=True), "broken")
    assert not chain.direct(session)  # a check that raises leaves the call to the chain


def test_another_implementation_or_no_builtin_means_the_chain(
    make_host: Callable[..., Host],
) -> None:
    class Replaces:
        @hookimpl(tryfirst=True)
        def masquerade_tool_invoke(self, call: Any) -> Any:
            return None

    class OldStyle:
        @hookimpl(hookwrapper=True)
        def masquerade_tool_invoke(self, call: Any) -> Any:
            yield

    for plugin in (Replaces(), OldStyle()):
        host = make_host(plugin)
        assert not host._tool_chain.direct(started_session(host))
    without_builtin = make_host(environ={"MASQUERADE_DISABLE_PLUGINS": "tools"})
    assert not without_builtin._tool_chain.direct(started_session(without_builtin))


CASES: list[tuple[str, Any, float | None]] = [
    ("add", {"a": 2, "b": 3}, None),
    ("add", {"a": "two"}, None),  # invalid arguments
    ("add", "{not json", None),
    ("shout", {"text": "hi"}, 3.0),
    ("fails", {}, None),
    ("teleport", {}, None),  # unknown tool
    ("hangs", {}, None),  # the tool's own timeout
    ("hangs", {}, 1.0),  # the tool's timeout, shorter than the bound
    ("hangs_long", {}, 0.05),  # the bound, shorter than the tool's timeout
]


@pytest.mark.anyio
async def test_the_direct_call_answers_as_the_chain_does(
    make_host: Callable[..., Host],
) -> None:
    host = make_host()
    session = started_session(host)
    for index, (name, arguments, bound) in enumerate(CASES):
        call = ToolCall(call_id=f"c{index}", name=name, arguments=arguments)
        assert host._tool_chain.direct(session)
        direct = await host.invoke_tool(call, session, bound)
        with monitored(host) as hooks:
            chained = await host.invoke_tool(call, session, bound)
        assert hooks == ["masquerade_tool_invoke"]
        assert type(direct) is type(chained) is ToolResult
        assert direct.model_dump(exclude={"duration_ms"}) == chained.model_dump(
            exclude={"duration_ms"}
        ), name
        assert direct.model_fields_set == chained.model_fields_set


@pytest.mark.anyio
async def test_a_call_past_its_bound_gets_the_late_answer(
    make_host: Callable[..., Host],
) -> None:
    host = make_host()
    session = started_session(host)
    call = ToolCall(call_id="slow", name="hangs_long", arguments={})
    answer = await host.invoke_tool(call, session, 0.05)
    assert answer == late_answer(call, 0.05)
    assert (answer.error, answer.error_type, answer.duration_ms) == (
        "tool 'hangs_long' did not answer within 0.05s", "timeout", 0.0
    )
    # The answer can be copied with changes, like any validated result.
    assert answer.model_copy(update={"call_id": "other"}).call_id == "other"


@pytest.mark.anyio
async def test_a_session_records_what_it_answers_on_the_direct_path(
    make_host: Callable[..., Host],
) -> None:
    host = make_host()
    session = started_session(host)
    first = await session.call_tool(ToolCall(call_id="x", name="add", arguments={"a": 1}))
    again = await session.call_tool(ToolCall(call_id="x", name="add", arguments={"a": 5}))
    assert again is first and first.output == 2
    assert session._records is not None
    (record,) = session._records.values()
    assert record.model_dump() == {
        "call_id": "x", "name": "add", "arguments": {"a": 1}, "output": 2, "error": None,
        "error_type": None, "duration_ms": first.duration_ms,
    }
    assert record.model_fields_set == set(record.model_dump())
    kept = [e for e in session._kept if e.type in ("tool.call", "tool.result")]
    assert [e.type for e in kept] == ["tool.call", "tool.result"] and kept[1] is first


@pytest.mark.anyio
async def test_a_repeated_call_waits_for_the_running_one(
    make_host: Callable[..., Host],
) -> None:
    release, started = anyio.Event(), anyio.Event()
    runs: list[str] = []

    @tool
    async def gated(order: str) -> str:
        """Waits to be released."""
        runs.append(order)
        started.set()
        await release.wait()
        return order

    host = make_host()
    session = Session(host, SessionRequest(provider="none", tools=[gated]))
    answers: list[ToolResult] = []

    async def call(order: str) -> None:
        answers.append(await session.call_tool(
            ToolCall(call_id="same", name="gated", arguments={"order": order})
        ))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "first")
            await started.wait()  # the first call is running
            tg.start_soon(call, "second")
            await anyio.sleep(0.01)
            assert not answers  # the repeat waits
            release.set()
    assert runs == ["first"]
    assert len(answers) == 2 and answers[0] is answers[1] and answers[0].output == "first"
