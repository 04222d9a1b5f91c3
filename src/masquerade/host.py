"""The plugin host: a pluggy ``PluginManager`` that never lets one plugin break the rest.

::

    async with masquerade.Host() as host:            # built-ins + entry-point plugins
        result = await host.run_session(
            masquerade.SessionRequest(provider="runway", avatar="cooking-teacher")
        )

The host registers the built-in plugins, then loads the entry points of group
``masquerade`` (filtered by ``MASQUERADE_PLUGINS`` / ``MASQUERADE_DISABLE_PLUGINS``). A
plugin that fails to import, register or validate is recorded as ``failed`` (see
:meth:`Host.plugin_info`) and skipped. Entering the host (``async with``) starts its one
shared :class:`~masquerade.Poller`.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from importlib import metadata
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import anyio
import pluggy
from anyio.abc import TaskGroup

from . import hookspecs
from ._deadlines import Deadlines
from ._redact import redact
from ._session_run import SessionBlock, SessionTasks
from ._tool_chain import ToolChain
from .errors import PluginError, ProviderNotFound, ToolDefinitionError
from .events import BaseEvent, ToolCall, ToolResult
from .hookspecs import hookimpl
from .poller import Poller
from .runtime import IGNORES, Observer, isolated
from .session import Session
from .tools import Tool, as_tool, invoke_bounded, late_answer

if TYPE_CHECKING:
    from .provider import Emulator, Provider, ProviderSession
    from .session import SessionRequest, SessionResult

__all__ = ["Host", "PluginInfo", "ENTRYPOINT_GROUP", "BUILTIN_PLUGINS"]

logger = logging.getLogger("masquerade.host")

ENTRYPOINT_GROUP = "masquerade"
ALLOW_ENV = "MASQUERADE_PLUGINS"
DENY_ENV = "MASQUERADE_DISABLE_PLUGINS"

#: Built-in plugins, registered before entry points: (name, module).
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("tools", "masquerade.tools"),
    ("toolschema", "masquerade.builtin.toolschema"),
    ("logging", "masquerade.builtin.logging"),
    ("tracing", "masquerade.builtin.tracing"),
)

PluginStatus = Literal["loaded", "failed", "disabled"]


@dataclass
class PluginInfo:
    """What the host knows about one plugin (``masquerade plugins`` prints these)."""

    name: str
    status: PluginStatus
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    builtin: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": list(self.hooks),
            "builtin": self.builtin,
            "error": self.error,
        }


def _env_list(environ: Mapping[str, str], key: str) -> set[str] | None:
    raw = environ.get(key)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _describe(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")


class Host:
    """Owns the plugin manager, the registered providers and tools, and the poller.

    It is the :class:`~masquerade.runtime.SessionRuntime` of the sessions it starts: a
    session reaches plugins only through that interface.

    Args:
        load_entrypoints: load plugins from entry points of group ``masquerade``.
        plugins: extra plugin objects (modules, classes, instances) to register.
        environ: where to read ``MASQUERADE_PLUGINS`` / ``MASQUERADE_DISABLE_PLUGINS``
            (defaults to ``os.environ``).
        poller: the :class:`~masquerade.Poller` to use (a default one otherwise).
    """

    def __init__(
        self,
        *,
        load_entrypoints: bool = True,
        plugins: Iterable[object] = (),
        environ: Mapping[str, str] | None = None,
        poller: Poller | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._allow = _env_list(env, ALLOW_ENV)
        self._deny = _env_list(env, DENY_ENV) or set()
        # Which setting turned a plugin off, for errors that name it.
        self._settings = {key: env.get(key, "") for key in (ALLOW_ENV, DENY_ENV)}
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._tool_chain = ToolChain(self.pm)
        self.poller = poller if poller is not None else Poller()
        #: One timer for every session's bounds: ``max_duration`` and the provisioning
        #: deadline (see :mod:`masquerade._deadlines`).
        self.deadlines = Deadlines()
        self._records: dict[str, PluginInfo] = {}
        self._providers: dict[str, Provider] = {}
        self._tools: dict[str, Tool] = {}
        self._emulators: dict[str, Emulator] = {}
        self._collected = False
        # Observers are stored with the argument names they asked for, so the session's
        # hot path calls them directly instead of through pluggy's multicall (about 3x
        # cheaper per event).
        self.event_observers: list[Observer] = []
        self.observers_by_kind = _ObserversByKind()
        self._ended_observers: list[Observer] = []
        self._task_group: TaskGroup | None = None
        self._session_tasks: SessionTasks | None = None
        self._entered = 0

        self._register(_ProviderRouter(self), "providers", builtin=True)
        for name, module_name in BUILTIN_PLUGINS:
            if name in self._deny:
                self._records[name] = PluginInfo(name, "disabled", builtin=True)
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # a broken built-in must not break the host either
                self._records[name] = PluginInfo(name, "failed", builtin=True, error=_describe(exc))
                logger.error("built-in plugin %s failed to import: %s", name, _describe(exc))
                continue
            self._register(module, name, builtin=True)
        for plugin in plugins:
            self.register(plugin)
        if load_entrypoints:
            self._load_entrypoints()

    # ------------------------------------------------------------------ plugins
    def register(self, plugin: object, name: str | None = None) -> PluginInfo:
        """Register a plugin object; returns its :class:`PluginInfo`.

        A plugin that fails validation is recorded as ``failed`` (and logged), not raised:
        check ``info.status``.
        """
        if name is None:
            # Modules and classes have a name; instances get their class's, made unique.
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
            base, n = name, 1
            while name in self._records or self.pm.get_plugin(name) is not None:
                n += 1
                name = f"{base}-{n}"
        if name in self._deny:
            info = PluginInfo(name, "disabled")
            self._records[name] = info
            return info
        return self._register(plugin, name)

    def unregister(self, name: str) -> None:
        """Remove a plugin by name (its providers, tools and observers go with it)."""
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self._records.pop(name, None)
        self._changed()

    def disabled_by(self, name: str) -> str | None:
        """The setting that disabled plugin ``name`` (``"MASQUERADE_DISABLE_PLUGINS=a,b"``),
        or ``None`` when it is not disabled."""
        info = self._records.get(name)
        if info is None or info.status != "disabled":
            return None
        names = {name, info.distribution} - {None}
        if names & self._deny:
            return f"{DENY_ENV}={self._settings[DENY_ENV]}"
        return f"{ALLOW_ENV}={self._settings[ALLOW_ENV]} (it is not listed there)"

    def provider_not_found(self, name: str) -> ProviderNotFound:
        """The error for a provider that is not registered: it names the closest
        registered provider, or the setting that disabled the provider's plugin."""
        self._collect()
        return ProviderNotFound(name, list(self._providers), disabled_by=self.disabled_by(name))

    def plugin_info(self) -> list[PluginInfo]:
        """Every plugin the host knows of: loaded, failed or disabled."""
        self._collect()
        return list(self._records.values())

    def _register(
        self,
        plugin: object,
        name: str,
        *,
        builtin: bool = False,
        dist: metadata.Distribution | None = None,
    ) -> PluginInfo:
        info = PluginInfo(
            name,
            "loaded",
            builtin=builtin,
            distribution=dist.metadata["Name"] if dist is not None else None,
            version=dist.version if dist is not None else None,
        )
        self._records[name] = info
        try:
            self._check_unknown_hooks(plugin)
            self.pm.register(plugin, name=name)
        except Exception as exc:
            if self.pm.get_plugin(name) is plugin:
                self.pm.unregister(name=name)
            return self._fail(info, exc)
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or ())
        self._changed()
        return info

    def _check_unknown_hooks(self, plugin: object) -> None:
        known = {n for n in dir(hookspecs) if n.startswith("masquerade_")}
        for attr in dir(plugin):
            if not attr.startswith("masquerade_") or attr in known:
                continue
            value = getattr(plugin, attr, None)
            opts = getattr(value, f"{hookspecs.PROJECT_NAME}_impl", None)
            if opts is None or opts.get("optionalhook"):
                continue
            close = difflib.get_close_matches(attr, known, n=1)
            suggestion = f"; did you mean {close[0]!r}?" if close else ""
            raise PluginError(f"implements unknown hook {attr!r}{suggestion}")

    def _fail(self, info: PluginInfo, exc: BaseException) -> PluginInfo:
        info.status = "failed"
        info.error = _describe(exc)
        logger.warning(
            "plugin %s failed and was skipped: %s",
            info.name,
            info.error,
            extra={"plugin": info.name},
        )
        self._changed()
        return info

    def _load_entrypoints(self) -> None:
        seen: set[str] = set()
        for ep in metadata.entry_points(group=ENTRYPOINT_GROUP):
            if ep.name in seen or ep.name in self._records:
                continue
            seen.add(ep.name)
            dist = ep.dist
            dist_name = dist.metadata["Name"] if dist is not None else None
            names = {ep.name, dist_name} - {None}
            if names & self._deny or (self._allow is not None and not names & self._allow):
                self._records[ep.name] = PluginInfo(
                    ep.name,
                    "disabled",
                    distribution=dist_name,
                    version=dist.version if dist is not None else None,
                )
                continue
            try:
                plugin = ep.load()
            except BaseException as exc:
                if not isinstance(exc, Exception | SystemExit):
                    raise  # KeyboardInterrupt and cancellation are not plugin failures
                info = PluginInfo(
                    ep.name,
                    "failed",
                    distribution=dist_name,
                    version=dist.version if dist is not None else None,
                )
                self._records[ep.name] = info
                self._fail(info, exc)
                continue
            self._register(plugin, ep.name, dist=dist)

    def _changed(self) -> None:
        self._collected = False
        self.event_observers = self._plain_impls("masquerade_session_event")
        self.observers_by_kind.reset(self.event_observers)
        self._ended_observers = self._plain_impls("masquerade_session_ended")

    def _plain_impls(self, hook_name: str) -> list[Observer]:
        caller = getattr(self.pm.hook, hook_name)
        impls = [i for i in reversed(caller.get_hookimpls()) if not (i.wrapper or i.hookwrapper)]
        return [(i.plugin_name, i.function, tuple(i.argnames)) for i in impls]

    # ------------------------------------------------- register_* callback hooks
    def _collect(self) -> None:
        if self._collected:
            return
        self._collected = True
        providers: dict[str, Provider] = {}
        tools: dict[str, Tool] = {}
        emulators: dict[str, Emulator] = {}
        for hook_name, kind, sink in (
            ("masquerade_register_providers", "provider", providers),
            ("masquerade_register_tools", "tool", tools),
            ("masquerade_register_emulators", "emulator", emulators),
        ):
            caller = getattr(self.pm.hook, hook_name)
            for impl in reversed(caller.get_hookimpls()):
                offered: dict[str, Any] = {}

                def register(
                    obj: Any, _offered: dict[str, Any] = offered, _kind: str = kind
                ) -> None:
                    item = as_tool(obj) if _kind == "tool" else obj
                    _offered[str(item.name)] = item

                try:
                    impl.function(register)
                    clash = sorted(set(offered) & set(sink))
                    if clash:
                        raise PluginError(
                            f"registers {kind} {clash[0]!r}, which another plugin already "
                            "registered",
                            hint="disable one of the two plugins",
                        )
                except Exception as exc:
                    record = self._records.get(impl.plugin_name)
                    if record is not None:
                        record.status = "failed"
                        record.error = _describe(exc)
                    logger.warning(
                        "plugin %s failed in %s and was skipped: %s",
                        impl.plugin_name,
                        hook_name,
                        _describe(exc),
                    )
                    continue
                sink.update(offered)
        self._providers = providers
        self._tools = tools
        self._emulators = emulators

    @property
    def providers(self) -> dict[str, Provider]:
        """Registered providers by name."""
        self._collect()
        return dict(self._providers)

    @property
    def tools(self) -> dict[str, Tool]:
        """Tools offered by plugins to every session, by name."""
        self._collect()
        return dict(self._tools)

    @property
    def emulators(self) -> dict[str, Emulator]:
        """Loopback emulators offered by plugins, by provider name (for the CLI)."""
        self._collect()
        return dict(self._emulators)

    def get_provider(self, name: str) -> Provider:
        self._collect()
        try:
            return self._providers[name]
        except KeyError:
            raise self.provider_not_found(name) from None

    # ------------------------------------------------------------ calling hooks
    async def create_provider_session(self, request: SessionRequest) -> ProviderSession:
        """Run the ``masquerade_session_create`` chain and await its result."""
        result = self.pm.hook.masquerade_session_create(request=request)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            raise self.provider_not_found(request.provider)
        return result  # type: ignore[no-any-return]

    def tool_schema(self, tool: Tool, dialect: str) -> dict[str, Any]:
        """The tool's description in ``dialect`` (cached on the tool)."""
        cached = tool._schemas.get(dialect)
        if cached is not None:
            return cached
        schema = self.pm.hook.masquerade_tool_schema(tool=tool, dialect=dialect)
        if schema is None:
            raise ToolDefinitionError(
                f"no plugin can describe tools in the {dialect!r} dialect",
                hint="check that the toolschema plugin is enabled (`masquerade plugins`)",
            )
        tool._schemas[dialect] = schema
        return schema  # type: ignore[no-any-return]

    async def invoke_tool(
        self, call: ToolCall, session: Session, bound: float | None = None
    ) -> ToolResult:
        """Run the ``masquerade_tool_invoke`` chain; always returns one ToolResult.

        Exceptions and wrong return values from any implementation become an error result.
        Cancellation propagates (the session answers the provider on its way out). With
        ``bound``, the whole chain is cancelled after that many seconds and answered with
        :func:`~masquerade.tools.late_answer`.

        While the chain is the built-in invocation and wrappers that pass this session's
        calls through (see :data:`~masquerade.runtime.PASSES_THROUGH`), the built-in is
        called directly: the same answer without pluggy's call, in one timeout scope.
        """
        try:
            if self._tool_chain.direct(session):
                return await invoke_bounded(call, session, bound)
            if bound is None:
                return await self._run_tool_chain(call, session)
            result: ToolResult | None = None
            with anyio.move_on_after(bound):
                result = await self._run_tool_chain(call, session)
            return late_answer(call, bound) if result is None else result
        except Exception as exc:
            logger.exception("the tool invocation chain raised for %s", call.name)
            return ToolResult(
                call_id=call.call_id,
                name=call.name,
                error=f"tool {call.name!r} failed: {exc}",
                error_type="exception",
            )

    async def _run_tool_chain(self, call: ToolCall, session: Session) -> ToolResult:
        result = self.pm.hook.masquerade_tool_invoke(call=call, session=session)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, ToolResult):
            return ToolResult(
                call_id=call.call_id,
                name=call.name,
                error=f"tool {call.name!r} produced no result (a plugin returned "
                f"{type(result).__name__})",
                error_type="exception",
            )
        if result.call_id != call.call_id:
            result = result.model_copy(update={"call_id": call.call_id})
        return result

    def isolate(self, plugin_name: str, awaitable: Awaitable[Any]) -> Awaitable[None]:
        """Wrap a plugin's awaitable so that what it raises is logged, not propagated."""
        return isolated(plugin_name, awaitable)

    async def notify_ended(self, session: Session, result: SessionResult) -> None:
        """Call every ``masquerade_session_ended`` implementation, isolating failures;
        each awaitable is bounded by the request's ``hook_timeout`` (then cancelled)."""
        bound = session.request.hook_timeout
        for plugin_name, fn, argnames in self._ended_observers:
            kwargs = {"session": session, "result": result}
            try:
                value = fn(*[kwargs[a] for a in argnames])
                if inspect.isawaitable(value):
                    with anyio.move_on_after(bound) as scope:
                        await value
                    if scope.cancelled_caught:
                        logger.error(
                            "masquerade_session_ended of %s did not finish within %gs "
                            "(hook_timeout); it was cancelled", plugin_name, bound,
                        )
            except Exception:
                logger.exception("masquerade_session_ended of %s raised", plugin_name)

    # ------------------------------------------------------------ running
    async def __aenter__(self) -> Host:
        if self._entered:
            self._entered += 1
            return self
        tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            await tg.start(self.poller.run)
            await tg.start(self.deadlines.run)
        except BaseException:
            # Cancelled (or failed) while the poller started: leave the group we entered,
            # or the task's cancel scopes would no longer nest.
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        self._task_group = tg
        self._session_tasks = SessionTasks(tg)
        self._entered = 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._entered -= 1
        if self._entered:
            return None
        tasks = self._session_tasks
        assert tasks is not None
        await tasks.close()  # sessions still running end through their cancel path
        self._session_tasks = None
        tg, self._task_group = self._task_group, None
        assert tg is not None
        tg.cancel_scope.cancel()
        if exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class()):
            # The block raised: stop the poller and let that exception propagate as it is
            # (passing it to the task group would wrap it in an ExceptionGroup).
            await tg.__aexit__(None, None, None)
            return False
        return await tg.__aexit__(exc_type, exc, tb)

    @property
    def running(self) -> bool:
        return self._task_group is not None

    def session(
        self,
        request: SessionRequest,
        *,
        on_event: Callable[[BaseEvent], Any] | None = None,
    ) -> AbstractAsyncContextManager[Session]:
        """Run one session for the duration of the ``async with`` block::

            async with host.session(request) as session:
                async for event in session.events():
                    ...
            print(session.result.transcript)

        Leaving the block ends the session (through its cancel path) if it is still
        running, and waits for its final result. If the block is cancelled, so is the
        session (outcome ``cancelled``).
        """
        return SessionBlock(self, Session(self, request, on_event=on_event))

    async def run_session(
        self,
        request: SessionRequest,
        *,
        on_event: Callable[[BaseEvent], Any] | None = None,
    ) -> SessionResult:
        """Run a session to its end and return its :class:`~masquerade.SessionResult`."""
        async with self.session(request, on_event=on_event) as session:
            return await session.wait()

    def __repr__(self) -> str:
        loaded = sum(1 for r in self._records.values() if r.status == "loaded")
        return f"<Host plugins={loaded} loaded, running={self.running}>"


# ------------------------------------------------------------------ built-in "providers"
class _ProviderRouter:
    """The default ``masquerade_session_create``: route the request to the provider
    registered under ``request.provider``. One instance per host (it needs its registry)."""

    def __init__(self, host: Host) -> None:
        self.host = host

    @hookimpl(trylast=True)
    def masquerade_session_create(self, request: SessionRequest) -> Awaitable[ProviderSession]:
        return self.host.get_provider(request.provider).create(request)


class _ObserversByKind(dict[str, list[Observer]]):
    """Event type -> the host's observers that do not ignore it (filled per type on
    first use, so the session's per-event lookup is one dict index)."""

    def __init__(self) -> None:
        super().__init__()
        self.observers: list[Observer] = []

    def reset(self, observers: list[Observer]) -> None:
        self.clear()
        self.observers = observers

    def __missing__(self, kind: str) -> list[Observer]:
        found = self[kind] = [
            o for o in self.observers if kind not in getattr(o[1], IGNORES, ())
        ]
        return found
