"""The hook contract: every hook a masquerade plugin can implement.

A plugin is any object (usually a module) with functions marked :data:`masquerade.hookimpl`
whose names are the hook names below. Install it with an entry point in group
``masquerade``::

    # pyproject.toml of your plugin
    [project.entry-points.masquerade]
    myplugin = "myplugin"

or register it directly with ``Host(plugins=[myplugin])`` / ``host.register(myplugin)``.

**Async is first class.** pluggy calls hooks synchronously, so an implementation that
needs to await simply *returns an awaitable* and the host awaits it. A ``wrapper=True``
implementation receives the inner result from ``yield`` (an awaitable, for the hooks that
produce one) and returns a new awaitable that wraps it::

    @hookimpl(wrapper=True)
    def masquerade_tool_invoke(call, session):
        inner = yield                  # the awaitable of the implementation below

        async def timed():
            started = time.perf_counter()
            try:
                return await inner     # a ToolResult
            finally:
                print(call.name, time.perf_counter() - started)

        return timed()

An implementation may take any subset of a hook's arguments, in any order (pluggy matches
them by name). A plugin whose hook implementation names an argument the hook does not
have, or implements a ``masquerade_*`` hook that does not exist, fails validation: it is
reported by ``masquerade plugins`` as ``failed`` and skipped, and everything else works.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .events import BaseEvent, ToolCall, ToolResult
    from .provider import Emulator, Provider, ProviderSession
    from .session import Session, SessionRequest, SessionResult
    from .tools import Tool

__all__ = ["hookspec", "hookimpl", "PROJECT_NAME"]

PROJECT_NAME = "masquerade"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: The marker plugins put on their hook implementations: ``@masquerade.hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def masquerade_register_providers(register: Callable[[Provider], None]) -> None:
    """Offer session providers.

    Called once per :class:`~masquerade.Host`, after every plugin is loaded, the first time
    the host needs its providers (and again when a plugin is registered later).

    :param register: call it with each :class:`~masquerade.provider.Provider` the plugin
        offers. A provider's ``name`` is what ``SessionRequest(provider=...)`` selects.
    :return: nothing (the return value is ignored).

    A provider may also offer ``resume(provider_session_id, request)`` (see
    :class:`~masquerade.provider.ResumableProvider`): durable runs call it instead of
    ``create`` to re-attach to a session whose worker died, so a call is never placed
    twice.

    A plugin whose implementation raises is marked ``failed`` and its providers are not
    used; other plugins' providers are unaffected. Two plugins registering the same name is
    an error reported on the second one.

    Example::

        @hookimpl
        def masquerade_register_providers(register):
            register(RunwayProvider())
    """


@hookspec
def masquerade_register_tools(register: Callable[[Tool], None]) -> None:
    """Offer tools to every session.

    Called like :func:`masquerade_register_providers`. Plugin tools are added to the tools
    of every session request; a tool whose name clashes with another tool of the session is
    a clear :class:`~masquerade.ToolDefinitionError` when the session starts.

    :param register: call it with each :class:`~masquerade.Tool` (or a plain function,
        which is turned into a tool with :func:`masquerade.tool`).
    :return: nothing.

    Example::

        @hookimpl
        def masquerade_register_tools(register):
            register(lookup_order)   # a function decorated with @masquerade.tool
    """


@hookspec
def masquerade_register_commands(register: Callable[..., None]) -> None:
    """Offer subcommands of the ``masquerade`` command line.

    Called once when the command line is built, with the plugins loaded the way
    :class:`~masquerade.Host` loads them (``MASQUERADE_PLUGINS`` applies). A built-in
    command of the same name wins (the plugin's is skipped with a warning), and so does
    the first plugin registering a name.

    :param register: call ``register(name, add_arguments, run, help="...")`` for each
        command: ``add_arguments(parser)`` declares its options on an
        :class:`argparse.ArgumentParser`; ``run(args)`` runs it with the parsed
        :class:`argparse.Namespace` and returns the exit code. A
        :class:`~masquerade.MasqueradeError` it raises is printed as ``error:`` and
        ``hint:`` lines (exit code 1), like the built-in commands' errors.
    :return: nothing.

    Keep the implementation cheap (it runs for every ``masquerade`` invocation): import
    heavy modules inside ``run``. Example::

        @hookimpl
        def masquerade_register_commands(register):
            register("worker", add_arguments, run, help="run graph runs from a queue")
    """


@hookspec
def masquerade_register_emulators(register: Callable[[Emulator], None]) -> None:
    """Offer loopback emulators of providers to the command line.

    Called like :func:`masquerade_register_providers`, when a command needs emulators:
    ``masquerade emulate`` (lists and serves them), ``masquerade demo --provider NAME``
    and the offline mode of ``masquerade run`` (they start the emulator in-process and
    point the provider at it through its environment variables). Sessions never call it.

    :param register: call it with each :class:`~masquerade.provider.Emulator`; its
        ``name`` is the provider it stands in for.
    :return: nothing (the return value is ignored).

    Give ``serve`` as an import path so that registering costs no import of the
    emulator's server. A plugin whose implementation raises is marked ``failed``; two
    plugins offering an emulator for the same provider is an error reported on the
    second one.

    Example::

        @hookimpl
        def masquerade_register_emulators(register):
            register(Emulator(
                "runway",
                "masquerade_runway.emulator:serve",
                key_env="RUNWAYML_API_SECRET",
                base_url_env="RUNWAYML_BASE_URL",
                title="Runway",
            ))
    """


@hookspec(firstresult=True)
def masquerade_session_create(request: SessionRequest) -> Awaitable[ProviderSession] | None:
    """Create a provider session for ``request``.

    Called once per session, when it starts provisioning. The built-in implementation
    (``trylast``) finds the registered provider named ``request.provider`` and returns the
    awaitable of its ``create(request)``. It is a ``firstresult`` hook: the first
    implementation returning something other than ``None`` wins.

    :param request: the :class:`~masquerade.SessionRequest` (provider, avatar, tools,
        personality, max duration, options). A wrapper may return a modified copy through
        its own awaitable, or replace ``request`` fields before the inner call runs.
    :return: an awaitable that resolves to a
        :class:`~masquerade.provider.ProviderSession`, or ``None`` when this
        implementation does not handle ``request.provider``.

    Wrappers (``wrapper=True``) see the request, can time the creation, and can veto it by
    raising a :class:`~masquerade.MasqueradeError` (the session then ends ``failed`` with
    that error and nothing is created)::

        @hookimpl(wrapper=True)
        def masquerade_session_create(request):
            if request.max_duration and request.max_duration > 600:
                raise masquerade.ConfigurationError(
                    "sessions over 10 minutes are not allowed here",
                    hint="lower max_duration",
                )
            return (yield)

    A provider that wants to implement creation directly (instead of registering a
    provider) must return ``None`` for requests that are not its own, so write it as a
    plain ``def`` that returns a coroutine, not an ``async def``.
    """


@hookspec
def masquerade_session_event(session: Session, event: BaseEvent) -> Awaitable[None] | None:
    """Observe every normalized event of every session.

    Called for each event, in order, before the session's subscribers receive it: status
    changes, readiness, transcripts, audio deltas, tool calls and results, errors, and the
    final ``ended`` event. This is the hot path of the session loop: keep implementations
    cheap, and check ``event.type`` first (audio deltas arrive at 10-50 per second). An
    implementation may carry a ``masquerade_ignores`` frozenset of event types it returns
    on at once; it is then not called for those at all (the built-in ``logging`` and
    ``tracing`` observers skip audio and text deltas this way).

    :param session: the :class:`~masquerade.Session` the event belongs to.
    :param event: the normalized event (see :mod:`masquerade.events`).
    :return: ``None``, or an awaitable. Awaitables are awaited in order by the session's
        observer task, so a slow async observer never holds up the provider.

    An observer that raises (or whose awaitable raises) is logged under the
    ``masquerade.host`` logger and isolated: the session goes on, and the other observers
    still see the event.

    Example::

        @hookimpl
        def masquerade_session_event(session, event):
            if event.type == "transcript.done":
                print(f"{event.role}: {event.text}")
    """


@hookspec(firstresult=True)
def masquerade_tool_schema(tool: Tool, dialect: str) -> dict[str, Any] | None:
    """Describe ``tool`` in a provider's tool format.

    Called when a session is created, once per tool and dialect (results are cached on the
    tool). The built-in ``toolschema`` plugin answers for the dialects ``"openai"`` and
    ``"runway"``; a plugin may override it with ``tryfirst=True`` or add dialects.

    :param tool: the :class:`~masquerade.Tool`.
    :param dialect: the provider's tool dialect, e.g. ``"openai"`` or ``"runway"``.
    :return: the JSON-ready tool description, or ``None`` to let the next implementation
        answer.

    Example::

        @hookimpl(tryfirst=True)
        def masquerade_tool_schema(tool, dialect):
            if dialect == "mycloud":
                return {"fn": tool.name, "doc": tool.description}
            return None
    """


@hookspec(firstresult=True)
def masquerade_tool_invoke(call: ToolCall, session: Session) -> Awaitable[ToolResult] | None:
    """Run the tool the model called and produce its one answer.

    Called once per ``tool.call`` event, concurrently with the session's other work. The
    built-in implementation (``trylast``) validates the arguments, runs the Python tool
    (async in the session's task group, sync in a worker thread), applies its timeout and
    turns every failure into an error result. Implement it with ``tryfirst=True`` to
    replace a tool's execution (for example to route it to another service), or as a
    ``wrapper=True`` to wrap every call (spans, auth, caching, retries).

    :param call: the :class:`~masquerade.events.ToolCall` (call id, tool name, arguments).
    :param session: the :class:`~masquerade.Session` it belongs to; ``session.tools`` maps
        names to :class:`~masquerade.Tool`.
    :return: an awaitable resolving to a :class:`~masquerade.events.ToolResult`, or
        ``None`` to let the next implementation answer.

    Whatever the chain does (raise, return junk, time out), the session turns it into
    exactly one ``tool.result`` event and exactly one answer to the provider.

    A wrapper that hands some sessions' calls through unchanged can say so with a
    ``masquerade_passes_through`` function of the session (a method, for a method
    wrapper): while that holds for every wrapper and the built-in is the only
    implementation, the host calls the built-in directly (see
    :data:`masquerade.runtime.PASSES_THROUGH`).

    Example (a wrapper that caches answers)::

        @hookimpl(wrapper=True)
        def masquerade_tool_invoke(call, session):
            inner = yield
            key = (call.name, json.dumps(call.arguments, sort_keys=True))

            async def cached():
                if key not in cache:
                    cache[key] = await inner
                else:
                    inner.close()  # never awaited: close it
                return cache[key].model_copy(update={"call_id": call.call_id})

            return cached()
    """


@hookspec
def masquerade_session_ended(session: Session, result: SessionResult) -> Awaitable[None] | None:
    """A session has ended and its final result is known.

    Called once per session, after its cancel path has run and the provider's final
    transcript was fetched, whatever the outcome (completed, failed, cancelled).

    :param session: the :class:`~masquerade.Session`.
    :param result: the :class:`~masquerade.SessionResult`: transcript, tool calls,
        outcome, duration, failure code.
    :return: ``None`` or an awaitable (awaited; failures are logged and isolated).

    Example::

        @hookimpl
        async def masquerade_session_ended(session, result):
            await crm.attach_transcript(result.provider_session_id, result.transcript)
    """
