"""One exception hierarchy for masquerade.

Every error says what happened *and* what to do about it. The ``hint`` is kept
separate so that callers (the CLI, logs) can show it on its own line::

    try:
        await host.run_session(request)
    except masquerade.ProvisioningTimeout as exc:
        print(exc.message)  # what happened
        print(exc.hint)     # what to do

Messages never contain secrets: every message passes through
:func:`masquerade.redact` before it is stored.
"""

from __future__ import annotations

from typing import Any

from ._redact import redact

__all__ = [
    "MasqueradeError",
    "ConfigurationError",
    "PluginError",
    "HookError",
    "ProviderNotFound",
    "ProviderError",
    "SessionError",
    "SessionFailed",
    "SessionClosed",
    "ProvisioningTimeout",
    "EventParseError",
    "ToolError",
    "ToolDefinitionError",
    "ToolNotFound",
    "ToolArgumentsError",
    "ToolTimeout",
    "ToolExecutionError",
    "GraphError",
    "GraphValidationError",
    "NodeError",
    "CallFailed",
]


class MasqueradeError(Exception):
    """Root of every error masquerade raises.

    Attributes:
        message: what happened (secrets redacted).
        hint: what to do about it, or ``""``.
    """

    default_hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = redact(message)
        self.hint = redact(hint if hint is not None else self.default_hint)
        super().__init__(self.message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ConfigurationError(MasqueradeError, ValueError):
    """A value given to masquerade is out of range or inconsistent."""


class PluginError(MasqueradeError):
    """A plugin failed to import, register or validate."""

    default_hint = (
        "run `masquerade plugins` to see which plugin failed and why; disable it with "
        "MASQUERADE_DISABLE_PLUGINS=<name>"
    )


class HookError(MasqueradeError):
    """A hook implementation raised or returned something it must not."""


class ProviderNotFound(MasqueradeError, LookupError):
    """No plugin offers the provider a session asked for.

    The hint names the closest registered provider (a typo), or the setting that disabled
    the provider's plugin (``disabled_by``, e.g. ``"MASQUERADE_DISABLE_PLUGINS=runway"``).
    """

    def __init__(self, name: str, available: list[str], *, disabled_by: str | None = None) -> None:
        import difflib

        self.name = name
        self.available = available
        self.disabled_by = disabled_by
        have = ", ".join(sorted(available)) or "none"
        if disabled_by is not None:
            super().__init__(
                f"provider {name!r} is disabled: its plugin {name!r} is turned off by "
                f"{disabled_by} (registered: {have})",
                hint=f"remove {name!r} from that setting to enable it; `masquerade plugins` "
                "shows every plugin and its status",
            )
            return
        close = difflib.get_close_matches(name, available, n=1, cutoff=0.6)
        super().__init__(
            f"no provider named {name!r} is registered (registered: {have})",
            hint=f"did you mean {close[0]!r}? `masquerade plugins` lists every provider's plugin"
            if close
            else "install the plugin that provides it (see the install guide) and check "
            "`masquerade plugins`",
        )


class ProviderError(MasqueradeError):
    """A provider answered with an error or could not be reached.

    Attributes:
        provider: the provider name (``"runway"``, ``"openai"``, ...).
        status_code: the HTTP status when there was one.
        code: the provider's stable error code when there was one.
        retryable: whether trying again later can help.
        retry_after: seconds the provider asked us to wait, when it said so.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        code: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after
        if hint is None:
            hint = (
                "this is transient; masquerade retries where it is safe, try again later"
                if retryable
                else "retrying will not help; fix the request or the credentials"
            )
        super().__init__(message, hint=hint)


class SessionError(MasqueradeError):
    """A session could not run or ended abnormally."""


class SessionFailed(SessionError):
    """The provider reported the session as FAILED.

    Attributes:
        failure_code: the provider's stable failure code, if any.
    """

    def __init__(
        self, message: str, *, failure_code: str | None = None, hint: str | None = None
    ) -> None:
        self.failure_code = failure_code
        super().__init__(message, hint=hint)


class SessionClosed(SessionError):
    """An operation needs a running session but this one has ended."""

    default_hint = "open a new session; a session cannot be restarted"


class ProvisioningTimeout(SessionError, TimeoutError):
    """A session did not become ready before its provisioning deadline."""

    def __init__(self, session_id: str, waited: float, *, queued: bool) -> None:
        self.session_id = session_id
        self.waited = waited
        self.queued = queued
        where = "waiting in the provider's queue" if queued else "provisioning"
        super().__init__(
            f"session {session_id} was still {where} after {waited:.1f}s",
            hint="raise provisioning_timeout on the request, or check your plan's "
            "concurrency limits"
            if queued
            else "raise provisioning_timeout on the request, or check the provider's status",
        )


class EventParseError(MasqueradeError, ValueError):
    """A provider event could not be parsed (malformed JSON or invalid fields)."""

    def __init__(self, message: str, *, raw: Any = None) -> None:
        self.raw = raw
        super().__init__(
            message, hint="the event was reported as an `error` event; the session goes on"
        )


class ToolError(MasqueradeError):
    """Base for tool problems."""


class ToolDefinitionError(ToolError, TypeError):
    """A tool cannot be defined as written (found when the tool is defined)."""


class ToolNotFound(ToolError, LookupError):
    """The model called a tool that this session does not have."""


class ToolArgumentsError(ToolError, ValueError):
    """The model's arguments do not match the tool's parameters."""


class ToolTimeout(ToolError, TimeoutError):
    """A tool did not finish within its timeout."""


class ToolExecutionError(ToolError):
    """A tool raised; the message is the tool's own."""


class GraphError(MasqueradeError):
    """A graph could not run."""


class GraphValidationError(GraphError, ValueError):
    """A graph is not well formed (found when it is compiled)."""


class NodeError(GraphError):
    """A node of a graph raised; ``node`` names it and the cause is chained."""

    def __init__(self, node: str, cause: BaseException) -> None:
        self.node = node
        # A masquerade error already says what to do (ProviderNotFound: install the
        # plugin); keep that advice instead of a generic one.
        hint = cause.hint if isinstance(cause, MasqueradeError) and cause.hint else None
        detail = cause.message if isinstance(cause, MasqueradeError) else str(cause)
        super().__init__(
            f"node {node!r} failed: {type(cause).__name__}: {detail}",
            hint=hint
            or "the node's own exception is chained as __cause__ (`masquerade run` prints its "
            "traceback)",
        )


class CallFailed(SessionFailed):
    """An :class:`~masquerade.AvatarNode`'s call ended ``failed`` (and the node does not
    continue on failure). ``result`` is the call's :class:`~masquerade.SessionResult`;
    ``unreachable`` says whether the provider could not be reached at all."""

    def __init__(self, result: Any) -> None:
        self.result = result
        reason = result.failure or result.error or result.reason or "no reason given"
        error = result.error or ""
        self.unreachable = "ConnectionError" in error.split(":", 1)[0] or str(
            reason
        ).startswith("could not connect")
        if self.unreachable:
            message = f"could not reach {result.provider.capitalize()}: {reason}"
            hint = (
                "check the network and the provider's base URL; no network? run offline on "
                "the emulator: `masquerade run FILE --offline` (or unset the API key)"
            )
        else:
            message = f"the {result.provider} call failed: {reason}"
            # The provider's own advice travels in ``error`` as "message (hint)".
            marker = f"{reason} ("
            own = error.split(marker, 1)[1][:-1] if marker in error and error.endswith(")") else ""
            hint = (f"{own}; or " if own else "") + (
                "pass continue_on_failure=True to the AvatarNode to run the next node anyway"
            )
        super().__init__(message, failure_code=result.failure_code, hint=hint)
