"""Tools: the decorator, and the invocation matrix through real scripted sessions.

Every call here goes through a real :class:`~masquerade.Session` and the host's
``masquerade_tool_invoke`` chain, on asyncio and on trio.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from masquerade import (
    SessionRequest,
    Tool,
    ToolContext,
    ToolDefinitionError,
    hookimpl,
    tool,
)
from masquerade.events import BaseEvent, ToolResult
from masquerade.testing import ScriptedProvider
from masquerade.tools import DEFAULT_TIMEOUT, as_tool


# ---------------------------------------------------------------- helpers
@dataclasses.dataclass
class Run:
    results: list[ToolResult]  # the tool.result events, in order
    answers: list[ToolResult]  # what the provider received, in order
    events: list[BaseEvent]
    outcome: str

    def by_id(self, call_id: str) -> ToolResult:
        (found,) = [r for r in self.results if r.call_id == call_id]
        return found


async def run_script(
    make_host: Any, script: Sequence[dict[str, Any]], tools: Sequence[Any], *plugins: object
) -> Run:
    provider = ScriptedProvider(script)
    host = make_host(provider, *plugins)
    events: list[BaseEvent] = []
    result = await host.run_session(
        SessionRequest(provider="scripted", tools=list(tools)), on_event=events.append
    )
    results = [e for e in events if isinstance(e, ToolResult)]
    calls = [e for e in events if e.type == "tool.call"]
    # Exactly one tool.result event and one answer to the provider per call, in order.
    assert [r.call_id for r in results] == [c.call_id for c in calls]  # type: ignore[attr-defined]
    answers = provider.sessions[0].answers
    assert [a.call_id for a in answers] == [r.call_id for r in results]
    assert [r.call_id for r in result.tool_calls] == [r.call_id for r in results]
    return Run(results, answers, events, result.outcome)


@tool
async def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


# ---------------------------------------------------------------- the decorator
def test_bare_and_with_options() -> None:
    assert isinstance(add, Tool)
    assert (add.name, add.description, add.timeout, add.kind) == (
        "add",
        "Add two numbers.",
        DEFAULT_TIMEOUT,
        "backend_rpc",
    )
    assert add.is_async
    assert not multiply.is_async

    @tool(name="sum_up", description="Sum.", timeout=1, kind="client_event")
    def f(a: int) -> int:
        return a

    assert (f.name, f.description, f.timeout, f.kind) == ("sum_up", "Sum.", 1, "client_event")
    renamed = tool(name="plus")(add)  # re-wrapping a tool keeps its function
    assert renamed.fn is add.fn
    assert renamed.name == "plus"
    assert renamed.description == add.description


@pytest.mark.anyio
async def test_tool_is_still_callable() -> None:
    assert await add(2, b=3) == 5
    assert await multiply(2, 4) == 8


def test_as_tool() -> None:
    assert as_tool(add) is add

    def plain(x: str) -> str:
        """Echo."""
        return x

    made = as_tool(plain)
    assert made.name == "plain"
    assert made.fn is plain


def test_context_parameter_detection() -> None:
    @tool
    def with_ctx(ctx: ToolContext, x: int) -> int:
        """X."""
        return x

    @tool
    def without(x: int) -> int:
        """X."""
        return x

    assert with_ctx.takes_context
    assert not without.takes_context
    assert list(with_ctx.parameters_schema["properties"]) == ["x"]


def test_types_local_to_a_function_resolve() -> None:
    class Point(BaseModel):
        x: int
        y: int

    @tool
    def move(to: Point) -> str:
        """Move."""
        return ""

    @tool(name="jump")
    def jump(to: Point) -> str:
        """Jump."""
        return ""

    assert move.parameters_schema["properties"]["to"]["required"] == ["x", "y"]
    assert jump.parameters_schema["properties"]["to"]["type"] == "object"


def test_parse_arguments() -> None:
    @tool
    def f(a: int, /, b: str, *, c: bool = False) -> None:
        """F."""

    assert f.parse_arguments({"a": 1, "b": "x"}) == ([1], {"b": "x"})
    assert f.parse_arguments('{"a": 1, "b": "x", "c": true}') == ([1], {"b": "x", "c": True})


def test_arguments_model_is_the_validator() -> None:
    model = add.arguments_model
    assert model.model_validate({"a": 1}).model_dump(by_alias=True) == {"a": 1, "b": 1}


# ---------------------------------------------------------------- invocation matrix
@pytest.mark.anyio
async def test_async_and_sync_tools(make_host: Any) -> None:
    main_thread = threading.get_ident()
    threads: list[int] = []

    @tool
    def where(label: str) -> str:
        """Where it runs."""
        threads.append(threading.get_ident())
        return label

    run = await run_script(
        make_host,
        [
            {"tool": "add", "args": {"a": 2, "b": 3}, "id": "c1"},
            {"tool": "add", "args": {"a": 2}, "id": "c2"},
            {"tool": "multiply", "args": {"a": 1.5, "b": 2}, "id": "c3"},
            {"tool": "where", "args": {"label": "here"}, "id": "c4"},
        ],
        [add, multiply, where],
    )
    assert [r.output for r in run.results] == [5, 3, 3.0, "here"]
    assert all(r.error is None and r.ok for r in run.results)
    assert threads
    assert threads[0] != main_thread
    assert run.outcome == "completed"


@pytest.mark.anyio
async def test_return_values_become_json(make_host: Any) -> None:
    class Slot(BaseModel):
        day: str
        hour: int

    @dataclasses.dataclass
    class Booking:
        slot: Slot
        tags: tuple[str, ...]

    @tool
    def model() -> Slot:
        """M."""
        return Slot(day="mon", hour=9)

    @tool
    async def nested() -> Booking:
        """N."""
        return Booking(Slot(day="tue", hour=10), ("a", "b"))

    @tool
    def mapping() -> dict[str, Any]:
        """D."""
        return {"n": [1, 2], "slot": Slot(day="wed", hour=11)}

    @tool
    def text() -> str:
        """T."""
        return '{"not": "parsed"}'

    @tool
    def nothing() -> None:
        """Nothing."""

    @tool
    def opaque() -> object:
        """O."""
        return threading.Lock()

    run = await run_script(
        make_host,
        [{"tool": name, "id": name} for name in
         ("model", "nested", "mapping", "text", "nothing", "opaque")],
        [model, nested, mapping, text, nothing, opaque],
    )
    assert run.by_id("model").output == {"day": "mon", "hour": 9}
    assert run.by_id("nested").output == {"slot": {"day": "tue", "hour": 10}, "tags": ["a", "b"]}
    assert run.by_id("mapping").output == {"n": [1, 2], "slot": {"day": "wed", "hour": 11}}
    assert run.by_id("text").output == '{"not": "parsed"}'
    assert run.by_id("text").output_text() == '{"not": "parsed"}'
    assert run.by_id("nothing").output is None
    assert run.by_id("nothing").ok
    bad = run.by_id("opaque")
    assert bad.error_type == "exception"
    assert "returned a lock, which cannot be sent as JSON" in (bad.error or "")


@pytest.mark.anyio
async def test_bad_arguments_name_the_field(make_host: Any) -> None:
    @tool
    def book_slot(day: str, hour: int) -> str:
        """Book."""
        raise AssertionError("never called with bad arguments")

    run = await run_script(
        make_host,
        [
            {"tool": "book_slot", "args": {"day": "sunday", "hour": "ten"}, "id": "wrong-type"},
            {"tool": "book_slot", "args": {"day": "sunday"}, "id": "missing"},
            {"tool": "book_slot", "args": {"day": "x", "hour": 1, "minute": 5}, "id": "extra"},
            {"tool": "book_slot", "args": {"day": "x", "hour": "10"}, "id": "no-coercion"},
            {"tool": "book_slot", "args": "{not json", "id": "not-json"},
            {"tool": "book_slot", "args": "[1, 2]", "id": "not-object"},
            {"tool": "book_slot", "args": '{"day": "mon", "hour": 9}', "id": "json-text"},
            {"say": "still here"},
        ],
        [book_slot],
    )
    for call_id in ("wrong-type", "missing", "extra", "no-coercion", "not-json", "not-object"):
        assert run.by_id(call_id).error_type == "arguments", call_id
        assert run.by_id(call_id).output is None
    assert run.by_id("wrong-type").error == (
        "invalid arguments for 'book_slot': hour: Input should be a valid integer (got \"ten\")"
    )
    assert run.by_id("missing").error == "invalid arguments for 'book_slot': hour: Field required"
    assert "minute: Extra inputs are not permitted" in (run.by_id("extra").error or "")
    assert "hour: Input should be a valid integer" in (run.by_id("no-coercion").error or "")
    assert "are not valid JSON" in (run.by_id("not-json").error or "")
    assert "must be a JSON object, got an array" in (run.by_id("not-object").error or "")
    # Arguments as JSON text are fine; the book_slot body runs and raises here.
    assert run.by_id("json-text").error == "never called with bad arguments"
    assert run.outcome == "completed"
    assert any(e.type == "transcript.done" for e in run.events)


@pytest.mark.anyio
async def test_raising_tool_sends_message_and_logs_traceback(
    make_host: Any, caplog: pytest.LogCaptureFixture
) -> None:
    @tool
    async def lookup(order_id: str) -> str:
        """Look up."""
        raise LookupError(f"no order {order_id}")

    @tool
    def silent() -> str:
        """Fails without a message."""
        raise RuntimeError

    with caplog.at_level(logging.ERROR, logger="masquerade.tools"):
        run = await run_script(
            make_host,
            [{"tool": "lookup", "args": {"order_id": "Z9"}, "id": "l"}, {"tool": "silent",
                                                                          "id": "s"}],
            [lookup, silent],
        )
    assert run.by_id("l").error == "no order Z9"
    assert run.by_id("l").error_type == "exception"
    assert run.by_id("s").error == "RuntimeError"
    assert "Traceback" not in (run.by_id("l").error or "")
    logged = [r for r in caplog.records if r.name == "masquerade.tools" and r.exc_info]
    assert len(logged) == 2
    assert "tool lookup raised" in logged[0].getMessage()


@pytest.mark.anyio
async def test_timeouts_cancel_the_tool(make_host: Any) -> None:
    cancelled = anyio.Event()
    release = threading.Event()
    sync_done = threading.Event()

    @tool(timeout=0.05)
    async def hangs() -> str:
        """Hangs."""
        try:
            await anyio.sleep(30)
        finally:
            cancelled.set()
        return "late"

    @tool(timeout=0.05)
    def blocks() -> str:
        """Blocks a thread."""
        release.wait(10)
        sync_done.set()
        return "late"

    @tool(timeout=0.05)
    async def raises_timeout() -> str:
        """Its own TimeoutError is an exception, not our timeout."""
        raise TimeoutError("upstream timed out")

    try:
        with anyio.fail_after(8):
            run = await run_script(
                make_host,
                [
                    {"tool": "hangs", "id": "a"},
                    {"tool": "blocks", "id": "s"},
                    {"tool": "raises_timeout", "id": "t"},
                    {"say": "moving on"},
                ],
                [hangs, blocks, raises_timeout],
            )
    finally:
        release.set()
    assert cancelled.is_set()
    assert run.by_id("a").error_type == "timeout"
    assert run.by_id("a").error == "tool 'hangs' did not finish within 0.05s and was cancelled"
    assert run.by_id("s").error_type == "timeout"  # the thread was abandoned, not awaited
    assert run.by_id("t").error_type == "exception"
    assert run.by_id("t").error == "upstream timed out"
    assert run.outcome == "completed"
    assert sync_done.wait(5)  # the abandoned thread finishes on its own once released


@pytest.mark.anyio
async def test_unknown_tool_and_session_goes_on(make_host: Any) -> None:
    run = await run_script(
        make_host,
        [{"tool": "teleport", "args": {"to": "mars"}, "id": "u"}, {"tool": "add",
                                                                   "args": {"a": 1}, "id": "k"}],
        [add, multiply],
    )
    assert run.by_id("u").error_type == "not_found"
    assert run.by_id("u").error == (
        "unknown tool 'teleport'; this session's tools are: add, multiply"
    )
    assert run.by_id("k").output == 2
    assert run.outcome == "completed"


@pytest.mark.anyio
async def test_context_injection(make_host: Any) -> None:
    seen: list[ToolContext] = []

    @tool
    async def whoami(ctx: ToolContext, greeting: str) -> str:
        """Who am I."""
        seen.append(ctx)
        ctx.logger.info("greeting %s", greeting)
        return f"{greeting} from {ctx.session.id}"

    @tool
    def whoami_sync(ctx: ToolContext) -> str:
        """Same, in a thread."""
        seen.append(ctx)
        return ctx.call_id

    provider = ScriptedProvider(
        [
            {"tool": "whoami", "args": {"greeting": "hi"}, "id": "w1"},
            {"tool": "whoami", "args": {"greeting": "hi", "ctx": 1}, "id": "w2"},
            {"tool": "whoami_sync", "id": "w3"},
        ]
    )
    host = make_host(provider)
    async with host.session(
        SessionRequest(provider="scripted", tools=[whoami, whoami_sync])
    ) as session:
        await session.wait()
    answers = {a.call_id: a for a in provider.sessions[0].answers}
    assert answers["w1"].output == f"hi from {session.id}"
    # The context is not an argument the model can send.
    assert answers["w2"].error_type == "arguments"
    assert "ctx" in (answers["w2"].error or "")
    assert answers["w3"].output == "w3"
    assert [c.call_id for c in seen] == ["w1", "w3"]
    assert all(c.session is session for c in seen)
    assert seen[0].logger.name == "masquerade.tools.whoami"


@pytest.mark.anyio
async def test_plugins_wrap_and_replace_the_builtin_invocation(make_host: Any) -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def masquerade_tool_invoke(self, call: Any, session: Any) -> Any:
            inner = yield

            async def shouted() -> ToolResult:
                result: ToolResult = await inner
                if isinstance(result.output, str):
                    return result.model_copy(update={"output": result.output.upper()})
                return result

            return shouted()

    class Remote:
        @hookimpl(tryfirst=True)
        def masquerade_tool_invoke(self, call: Any) -> Any:
            if call.name != "remote":
                return None  # the built-in answers

            async def answer() -> ToolResult:
                return ToolResult(call_id=call.call_id, name=call.name, output="from afar")

            return answer()

    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    @tool
    def remote() -> str:
        """Runs elsewhere."""
        raise AssertionError("replaced by a plugin")

    run = await run_script(
        make_host,
        [{"tool": "echo", "args": {"text": "hi"}, "id": "e"}, {"tool": "remote", "id": "r"}],
        [echo, remote],
        Wrapper(),
        Remote(),
    )
    assert run.by_id("e").output == "HI"
    assert run.by_id("r").output == "FROM AFAR"


# ---------------------------------------------------------------- where tools come from
class OffersTools:
    def __init__(self, *tools: Any, name: str = "offers-tools") -> None:
        self.tools = tools
        self.__name__ = name  # the plugin name

    @hookimpl
    def masquerade_register_tools(self, register: Any) -> None:
        for t in self.tools:
            register(t)


@pytest.mark.anyio
async def test_plugin_tools_join_the_session(make_host: Any) -> None:
    def weather(city: str) -> str:
        """Weather in a city."""
        return f"sunny in {city}"

    run = await run_script(
        make_host,
        [{"tool": "weather", "args": {"city": "Oslo"}, "id": "w"}, {"tool": "add",
                                                                    "args": {"a": 1}, "id": "a"}],
        [add],
        OffersTools(weather),
    )
    assert run.by_id("w").output == "sunny in Oslo"
    assert run.by_id("a").output == 2


@pytest.mark.anyio
async def test_name_clashes_are_clear_errors(make_host: Any) -> None:
    @tool(name="add")
    def other_add(a: int) -> int:
        """Another add."""
        return a

    # Twice in the request.
    with pytest.raises(ToolDefinitionError, match="two tools are named 'add'"):
        SessionRequest(provider="scripted", tools=[add, other_add])
    # The request against a plugin.
    host = make_host(ScriptedProvider(), OffersTools(other_add))
    with pytest.raises(ToolDefinitionError, match="'add' of the session clashes"):
        async with host.session(SessionRequest(provider="scripted", tools=[add])):
            pass
    # Two plugins: one of them is reported as failed; the other one's tool stays.
    first, second = OffersTools(add, name="first"), OffersTools(other_add, name="second")
    host = make_host(ScriptedProvider(), first, second)
    kept = host.tools["add"]
    failed = [i for i in host.plugin_info() if i.status == "failed"]
    assert len(failed) == 1
    assert "registers tool 'add', which another plugin already registered" in (
        failed[0].error or ""
    )
    loser = first if failed[0].name == "first" else second
    assert kept is not loser.tools[0]
    assert kept in (add, other_add)


def numbered_tools(count: int, prefix: str = "t") -> list[Tool]:
    def f() -> None:
        """Do it."""

    return [tool(name=f"{prefix}{i}")(f) for i in range(count)]


@pytest.mark.anyio
async def test_at_most_20_tools_per_session(make_host: Any) -> None:
    assert len(SessionRequest(provider="scripted", tools=numbered_tools(20)).tools) == 20
    with pytest.raises(ToolDefinitionError) as err:
        SessionRequest(provider="scripted", tools=numbered_tools(21))
    assert "has 21 tools; Runway allows at most 20 per session" in err.value.message
    assert "split the work" in err.value.hint
    # Plugin tools count too, when the session starts.
    host = make_host(ScriptedProvider(), OffersTools(*numbered_tools(6, "p")))
    request = SessionRequest(provider="scripted", tools=numbered_tools(15))
    with pytest.raises(ToolDefinitionError, match="has 21 tools"):
        async with host.session(request):
            pass
