"""The interface provider plugins implement.

A provider is two small objects:

* a :class:`Provider` (registered through ``masquerade_register_providers``) whose
  :meth:`~Provider.create` starts one session at the provider, and
* the :class:`ProviderSession` it returns, which the :class:`~masquerade.Session` drives:

  ===================  =================================================================
  step                 method
  ===================  =================================================================
  provisioning         :meth:`~ProviderSession.poll`, called by the host's shared poller
                       until it reports ``ready`` (only if ``requires_polling``)
  frontend join        :meth:`~ProviderSession.join_credentials`, once, after ``ready``
  the call             :meth:`~ProviderSession.connect`: join the backend side and feed
                       events into the session until the conversation ends
  tool answers         inside ``connect``: ``await session.call_tool(call)`` returns the
                       one :class:`~masquerade.events.ToolResult` to deliver
  cancel path          :meth:`~ProviderSession.end`, exactly once on every exit
  final result         :meth:`~ProviderSession.result`, after ``end``
  ===================  =================================================================

``masquerade.testing.ScriptedProvider`` is a complete, small implementation to read.

A provider plugin may also offer its loopback emulator as an :class:`Emulator`
(through ``masquerade_register_emulators``), so that ``masquerade emulate``,
``masquerade demo`` and the offline ``masquerade run`` can run it with no key.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from .events import Outcome, Role

if TYPE_CHECKING:
    from .events import JoinCredentials
    from .session import Session, SessionRequest

__all__ = [
    "Emulator",
    "Provider",
    "ProviderSession",
    "ProvisioningStatus",
    "ProviderOutcome",
    "TranscriptTurn",
    "ProvisioningState",
    "ResumableProvider",
]

ProvisioningState: TypeAlias = Literal[
    "not_ready", "ready", "running", "completed", "failed", "cancelled"
]


class ProvisioningStatus(BaseModel):
    """One answer of :meth:`ProviderSession.poll`.

    ``state`` is normalized; ``provider_status`` keeps the provider's own word.
    ``queued`` is true while the provider holds the session in a capacity queue.
    """

    model_config = ConfigDict(frozen=True)

    state: ProvisioningState
    queued: bool = False
    provider_status: str | None = None
    failure: str | None = None
    failure_code: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in ("completed", "failed", "cancelled")


class TranscriptTurn(BaseModel):
    """One turn of the final transcript, with the tool calls and results made in it."""

    role: Role
    text: str | None = None
    timestamp: str | None = None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    tool_results: list[dict[str, Any]] = Field(default_factory=list)


class ProviderOutcome(BaseModel):
    """What a provider knows about a session once it has ended.

    Every field is optional: the session fills gaps from what it observed itself (its own
    transcript from ``transcript.done`` events, its measured duration).
    """

    outcome: Outcome | None = None
    duration_s: float | None = None
    failure: str | None = None
    failure_code: str | None = None
    transcript: list[TranscriptTurn] | None = None
    recording_url: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class ProviderSession(Protocol):
    """One session at a provider, driven by :class:`masquerade.Session`.

    Attributes:
        id: the provider's id for the session (Runway's session id, OpenAI's session id).
        requires_polling: ``True`` when the session must be polled until ready (Runway);
            ``False`` when it is ready as soon as it is created.
    """

    id: str
    requires_polling: bool

    async def poll(self) -> ProvisioningStatus:
        """Ask the provider for the session's status once.

        Raise :class:`~masquerade.ProviderError` (with ``retryable`` and
        ``retry_after``) on errors: the poller backs off and retries retryable ones and
        fails the session on the others.
        """
        ...

    async def join_credentials(self) -> JoinCredentials | None:
        """Return what the frontend joins with, once, after the session is ready."""
        ...

    async def connect(self, session: Session) -> None:
        """Run the backend side of the call until the conversation ends.

        Feed events with ``session.emit(event)`` (sync, no await per event) or
        ``await session.publish(event)`` (waits only under backpressure); answer tool calls
        with ``await session.call_tool(call)``. Return when the conversation is over;
        raise :class:`~masquerade.ProviderError` when it broke. Cancellation means the
        session is ending: clean up and re-raise.
        """
        ...

    async def end(self, reason: str) -> None:
        """The cancel path: end the session at the provider.

        Called exactly once per session on every exit (normal end, error, cancellation,
        deadline), inside a shielded scope with a time limit. Must be safe to call when
        the session already ended by itself or never became ready.
        """
        ...

    async def result(self) -> ProviderOutcome:
        """Fetch what the provider recorded (final transcript, duration, failure code)."""
        ...


@runtime_checkable
class Provider(Protocol):
    """A session provider. ``name`` is what ``SessionRequest(provider=...)`` selects;
    ``tool_dialect`` names the tool format its sessions take (``"runway"``, ``"openai"``)."""

    name: str
    tool_dialect: str

    async def create(self, request: SessionRequest) -> ProviderSession:
        """Start one session at the provider. Must not be retried by the caller when it may
        have reached the provider (it could create and bill a second session)."""
        ...


@runtime_checkable
class ResumableProvider(Provider, Protocol):
    """A provider that can re-attach to a session created earlier, maybe by another
    process (optional: a provider offers it by having a ``resume`` method).

    Durable runs (the ``masquerade-dbos`` plugin) checkpoint a session's provider id as
    soon as :meth:`~Provider.create` returns. When the process running the session dies,
    the run's next worker calls ``resume`` instead of ``create``, so the call is never
    placed twice. A provider without ``resume`` makes such a node fail with a
    ``worker_lost`` error instead.
    """

    async def resume(self, provider_session_id: str, request: SessionRequest) -> ProviderSession:
        """Return a live handle on the existing session ``provider_session_id``.

        ``request`` is the one the session was created for (tools, options). The handle is
        driven like a new one: a session still provisioning is polled until ready, a live
        one is joined again (its tools answered from here on; its original deadline still
        applies at the provider), and one that has already ended reports
        ``requires_polling=False``, no join credentials, returns from ``connect`` at once
        and gives its recorded result from ``result``. Never creates a session. Raise
        :class:`~masquerade.ProviderError` when the session is unknown to the provider, and
        :class:`NotImplementedError` for a kind of session that cannot be re-attached
        (durable runs then fail the node with ``worker_lost``).
        """
        ...


@dataclass(frozen=True)
class Emulator:
    """A provider's loopback emulator, as a plugin offers it to the command line.

    Register it with :func:`~masquerade.hookspecs.masquerade_register_emulators`. The
    core never imports a provider plugin: ``masquerade emulate NAME``, ``masquerade
    demo --provider NAME`` and the offline mode of ``masquerade run`` find emulators only
    through this description.

    Args:
        name: the provider it stands in for (``"runway"``): what the commands select.
        serve: the emulator itself, as ``"package.module:function"`` (imported only when
            it starts, so listing plugins stays cheap) or the callable.
            ``async def serve(*, host, port, api_key, ready, script=None)`` binds
            ``host:port`` (port 0: a free one), accepts only ``api_key`` (401 otherwise),
            calls ``ready(base_url)`` once listening, plays ``script`` (a file in its own
            format) and serves until cancelled. It may leave out ``script``.
        key_env: the environment variable the provider reads its API key from. The
            offline modes set it (and ``base_url_env``) to the emulator's for the run;
            without both, the emulator can be served but not run offline.
        base_url_env: the environment variable the provider reads its base URL from.
        title: the provider's display name (``"Runway"``); the name when empty.
        offline_script: script data (the emulator's format, JSON-ready) that ``masquerade
            run`` plays when neither ``--script`` nor the graph file's ``EMULATOR_SCRIPTS``
            gives one; ``None``: the emulator's own default, which should be a short,
            complete call that hangs up.
        demo_script: ``demo_script(steps, pace)`` turns the demo's conversation (steps in
            the format :class:`masquerade.testing.ScriptedProvider` plays: ``say``,
            ``tool``, ``client_event``, ``hangup``) and its pace in seconds into the
            emulator's script data; ``None`` when the emulator cannot play the demo.
        demo_options: session options the demo adds when it runs against the real
            service (Runway: ``{"consume": True}``, so its join page gets room
            credentials).

    ``masquerade_register_emulators`` shows how a plugin registers one.
    """

    name: str
    serve: str | Callable[..., Awaitable[None]]
    key_env: str | None = None
    base_url_env: str | None = None
    title: str = ""
    offline_script: Any = None
    demo_script: Callable[[Sequence[Mapping[str, Any]], float], Any] | None = None
    demo_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return self.title or self.name

    @property
    def target(self) -> str:
        """Where ``serve`` lives, as ``module:function``."""
        if isinstance(self.serve, str):
            return self.serve
        module = getattr(self.serve, "__module__", "?")
        return f"{module}:{getattr(self.serve, '__qualname__', repr(self.serve))}"

    def load(self) -> Callable[..., Awaitable[None]]:
        """The ``serve`` callable (importing it when given as a path)."""
        if not isinstance(self.serve, str):
            return self.serve
        module_name, _, attr = self.serve.partition(":")
        target: Any = importlib.import_module(module_name)
        for part in attr.split(".") if attr else ():
            target = getattr(target, part)
        if not callable(target):
            raise TypeError(f"{self.serve} is not callable")
        return target  # type: ignore[no-any-return]
