"""The plugin host: built-ins, real entry points, allow/deny lists, failure isolation and
async hooks (results and wrappers)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Generator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import masquerade
from masquerade import Host, SessionRequest, hookimpl
from masquerade.events import ToolCall, ToolResult
from masquerade.testing import ScriptedProvider

from .plugin_dist import install_distribution

GOOD = """
from masquerade import hookimpl, tool

SEEN = []

@tool
def shout(text: str) -> str:
    \"\"\"Shout it.\"\"\"
    return text.upper()

@hookimpl
def masquerade_register_tools(register):
    register(shout)

@hookimpl
def masquerade_session_event(event):
    SEEN.append(event.type)
"""
BROKEN_IMPORT = "raise ImportError('missing dependency: libfoo')\n"
BAD_ARGUMENT = """
from masquerade import hookimpl

@hookimpl
def masquerade_session_event(session, event, colour):
    pass
"""
UNKNOWN_HOOK = """
from masquerade import hookimpl

@hookimpl
def masquerade_session_evnt(session, event):
    pass
"""
RAISES_ON_REGISTER = """
from masquerade import hookimpl

@hookimpl
def masquerade_register_providers(register):
    raise RuntimeError("no config file")
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.delenv("MASQUERADE_PLUGINS", raising=False)
    monkeypatch.delenv("MASQUERADE_DISABLE_PLUGINS", raising=False)
    return install_distribution(
        tmp_path,
        monkeypatch,
        {
            "good": GOOD,
            "broken": BROKEN_IMPORT,
            "badarg": BAD_ARGUMENT,
            "unknown": UNKNOWN_HOOK,
            "raises": RAISES_ON_REGISTER,
        },
        {
            "good": "good",
            "broken": "broken",
            "badarg": "badarg",
            "unknown": "unknown",
            "raises": "raises",
        },
        dist="masquerade-testplugins",
    )


def by_name(host: Host) -> dict[str, masquerade.PluginInfo]:
    return {i.name: i for i in host.plugin_info()}


def test_builtins_are_registered() -> None:
    info = by_name(Host(load_entrypoints=False))
    for name in ("providers", "tools", "toolschema", "logging"):
        assert info[name].status == "loaded"
        assert info[name].builtin
    assert "masquerade_session_event" in info["logging"].hooks


def test_entry_points_load_and_failures_are_isolated(installed: tuple[str, str]) -> None:
    dist, _ = installed
    info = by_name(Host(environ={}))
    assert info["good"].status == "loaded"
    assert info["good"].distribution == dist
    assert info["good"].version == "1.2.3"
    assert info["good"].hooks == ["masquerade_register_tools", "masquerade_session_event"]
    assert info["broken"].status == "failed"
    assert "missing dependency: libfoo" in (info["broken"].error or "")
    assert info["badarg"].status == "failed"
    assert "colour" in (info["badarg"].error or "")
    assert info["unknown"].status == "failed"
    assert "did you mean 'masquerade_session_event'" in (info["unknown"].error or "")
    assert info["raises"].status == "failed"
    assert "no config file" in (info["raises"].error or "")
    # everything else still works
    assert info["logging"].status == "loaded"


def test_failed_plugin_is_logged(
    installed: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="masquerade.host"):
        Host(environ={})
    assert any("broken" in r.getMessage() and "libfoo" in r.getMessage() for r in caplog.records)


def test_plugin_tools_reach_sessions(installed: tuple[str, str]) -> None:
    # The workspace also installs examples/plugin, which offers a tool of its own.
    host = Host(environ={"MASQUERADE_DISABLE_PLUGINS": "example-audit"})
    assert set(host.tools) == {"shout"}


def test_allow_list(installed: tuple[str, str]) -> None:
    info = by_name(Host(environ={"MASQUERADE_PLUGINS": "good"}))
    assert info["good"].status == "loaded"
    for name in ("broken", "badarg", "unknown", "raises"):
        assert info[name].status == "disabled"


def test_empty_allow_list_means_none(installed: tuple[str, str]) -> None:
    info = by_name(Host(environ={"MASQUERADE_PLUGINS": ""}))
    assert {i.status for n, i in info.items() if not i.builtin} == {"disabled"}
    assert info["logging"].status == "loaded"


def test_allow_list_by_distribution_name(installed: tuple[str, str]) -> None:
    dist, _ = installed
    info = by_name(Host(environ={"MASQUERADE_PLUGINS": dist}))
    assert info["good"].status == "loaded"
    assert info["broken"].status == "failed"  # allowed, so loaded, so failed


def test_deny_list_covers_entry_points_and_builtins(installed: tuple[str, str]) -> None:
    host = Host(environ={"MASQUERADE_DISABLE_PLUGINS": "broken, logging"})
    info = by_name(host)
    assert info["broken"].status == "disabled"
    assert info["logging"].status == "disabled"
    assert info["good"].status == "loaded"
    assert host.pm.get_plugin("logging") is None


def test_register_reports_failure_instead_of_raising() -> None:
    class Bad:
        @hookimpl
        def masquerade_tool_schema(self, tool: Any, dialect: str, nonsense: int) -> None:
            return None

    host = Host(load_entrypoints=False)
    info = host.register(Bad(), name="bad")
    assert info.status == "failed"
    assert "nonsense" in (info.error or "")
    assert host.pm.get_plugin("bad") is None


def test_two_plugins_registering_the_same_provider() -> None:
    host = Host(load_entrypoints=False)
    host.register(ScriptedProvider(), name="first")
    host.register(ScriptedProvider(), name="second")
    info = by_name(host)
    statuses = {info["first"].status, info["second"].status}
    assert statuses == {"loaded", "failed"}
    failed = info["first"] if info["first"].status == "failed" else info["second"]
    assert "already registered" in (failed.error or "")
    assert "scripted" in host.providers


# ------------------------------------------------------------------- async hooks
@pytest.mark.anyio
async def test_session_create_wrapper_sees_request_and_wraps_awaitable(make_host: Any) -> None:
    calls: list[str] = []

    class Timing:
        @hookimpl(wrapper=True)
        def masquerade_session_create(
            self, request: SessionRequest
        ) -> Generator[None, Awaitable[Any], Awaitable[Any]]:
            calls.append(f"before:{request.provider}")
            inner = yield

            async def wrapped() -> Any:
                created = await inner
                calls.append(f"created:{created.id}")
                return created

            return wrapped()

    host = make_host(ScriptedProvider([{"say": "hi"}]), Timing())
    result = await host.run_session(SessionRequest(provider="scripted"))
    assert result.outcome == "completed"
    assert calls == ["before:scripted", "created:scripted-1"]


@pytest.mark.anyio
async def test_session_create_wrapper_can_veto(make_host: Any) -> None:
    provider = ScriptedProvider([{"say": "hi"}])

    class Veto:
        @hookimpl(wrapper=True)
        def masquerade_session_create(self, request: SessionRequest) -> Any:
            if request.max_duration and request.max_duration > 60:
                raise masquerade.ConfigurationError("too long", hint="lower max_duration")
            return (yield)

    host = make_host(provider, Veto())
    result = await host.run_session(SessionRequest(provider="scripted", max_duration=600))
    assert result.outcome == "failed"
    assert result.failure == "too long"
    assert provider.sessions == []  # nothing was created


@pytest.mark.anyio
async def test_unknown_provider_is_a_clear_failure(make_host: Any) -> None:
    host = make_host()
    result = await host.run_session(SessionRequest(provider="nope"))
    assert result.outcome == "failed"
    assert "no provider named 'nope'" in (result.failure or "")


@pytest.mark.anyio
async def test_async_observer_and_raising_observers_are_isolated(
    make_host: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    class Raises:
        @hookimpl
        def masquerade_session_event(self, event: Any) -> None:
            raise ValueError("observer bug")

    class AsyncRaises:
        @hookimpl
        async def masquerade_session_event(self, event: Any) -> None:
            raise ValueError("async observer bug")

    class AsyncObserver:
        @hookimpl
        async def masquerade_session_event(self, session: Any, event: Any) -> None:
            await anyio.lowlevel.checkpoint()
            seen.append(event.type)

    host = make_host(
        ScriptedProvider([{"say": "hello"}, {"tool": "nothing"}]),
        Raises(),
        AsyncRaises(),
        AsyncObserver(),
    )
    with caplog.at_level(logging.ERROR, logger="masquerade.host"):
        result = await host.run_session(SessionRequest(provider="scripted"))
    assert result.outcome == "completed"
    assert seen[0] == "status" and seen[-1] == "ended"
    assert "tool.call" in seen and "tool.result" in seen
    assert any("observer bug" in r.getMessage() or r.exc_info for r in caplog.records)


@pytest.mark.anyio
async def test_tool_invoke_replacement_and_wrapper(make_host: Any) -> None:
    order: list[str] = []

    class Replace:
        @hookimpl(tryfirst=True)
        def masquerade_tool_invoke(self, call: ToolCall) -> Awaitable[ToolResult] | None:
            if call.name != "remote":
                return None

            async def run() -> ToolResult:
                order.append("remote")
                return ToolResult(call_id="ignored", name=call.name, output={"via": "remote"})

            return run()

    class Wrap:
        @hookimpl(wrapper=True)
        def masquerade_tool_invoke(self, call: ToolCall) -> Any:
            inner = yield

            async def wrapped() -> ToolResult:
                order.append(f"enter:{call.name}")
                result: ToolResult = await inner
                order.append(f"exit:{call.name}")
                return result

            return wrapped()

    host = make_host(ScriptedProvider([{"tool": "remote", "id": "c1"}]), Replace(), Wrap())
    result = await host.run_session(SessionRequest(provider="scripted"))
    assert order == ["enter:remote", "remote", "exit:remote"]
    assert result.tool_calls[0].output == {"via": "remote"}
    assert result.tool_calls[0].call_id == "c1"  # the host keeps the call's id


@pytest.mark.anyio
async def test_tool_invoke_chain_that_raises_or_returns_junk(make_host: Any) -> None:
    class Junk:
        @hookimpl(tryfirst=True)
        def masquerade_tool_invoke(self, call: ToolCall) -> Any:
            if call.name == "junk":
                return "not a ToolResult"
            if call.name == "boom":
                raise RuntimeError("plugin exploded")
            return None

    provider = ScriptedProvider([{"tool": "junk"}, {"tool": "boom"}])
    host = make_host(provider, Junk())
    result = await host.run_session(SessionRequest(provider="scripted"))
    answers = provider.sessions[0].answers
    assert [a.error_type for a in answers] == ["exception", "exception"]
    assert "junk" in (answers[0].error or "")
    assert "plugin exploded" in (answers[1].error or "")
    assert result.outcome == "completed"


@pytest.mark.anyio
async def test_observer_not_called_for_the_types_it_ignores(make_host: Any) -> None:
    calls: list[str] = []

    class Picky:
        @hookimpl
        def masquerade_session_event(self, event: Any) -> None:
            calls.append(event.type)

        masquerade_session_event.masquerade_ignores = frozenset(  # type: ignore[attr-defined]
            {"transcript.delta", "transcript.done"}
        )

    host = make_host(ScriptedProvider([{"say": "hello"}]), Picky())
    seen: list[str] = []
    result = await host.run_session(
        SessionRequest(provider="scripted"), on_event=lambda e: seen.append(e.type)
    )
    assert result.outcome == "completed"
    assert "transcript.done" in seen
    assert calls == [t for t in seen if t not in ("transcript.delta", "transcript.done")]
    # The built-in observers skip the per-frame types the same way.
    assert host.observers_by_kind["transcript.delta"] == []
    assert len(host.observers_by_kind["status"]) == len(host.event_observers) == 3
    # A plugin registered later is seen at once (the per-type cache is dropped).
    late: list[str] = []

    class Late:
        @hookimpl
        def masquerade_session_event(self, event: Any) -> None:
            late.append(event.type)

    host.register(Late(), name="late")
    assert "late" in [name for name, _, _ in host.observers_by_kind["transcript.delta"]]


class _SlowToStartPoller(masquerade.Poller):
    async def run(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        await anyio.sleep_forever()  # never reports started: entering waits until cancelled


@pytest.mark.anyio
async def test_host_cancelled_while_entering_leaves_nothing_entered() -> None:
    host = Host(load_entrypoints=False, poller=_SlowToStartPoller())
    with anyio.move_on_after(0.05) as scope:
        async with host:
            pytest.fail("the host cannot be entered before its poller started")
    assert scope.cancelled_caught and not host.running
    # The task's cancel scopes still nest: another scope enters and exits cleanly.
    with anyio.move_on_after(0.01) as later:
        await anyio.sleep_forever()
    assert later.cancelled_caught
