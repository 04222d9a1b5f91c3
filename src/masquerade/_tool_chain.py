"""When a tool call may skip pluggy's ``masquerade_tool_invoke`` call.

Most sessions' chain is the built-in invocation (:func:`masquerade.tools.invoke_tool`)
and the tracing plugin's wrapper, which hands the calls of sessions it does not trace
through unchanged. For those, the host calls the built-in directly: the same answer
without pluggy's multicall and the wrapper's generator, and with one timeout scope
instead of two (:func:`masquerade.tools.invoke_bounded`). A wrapper says when it passes
a session's calls through with a :data:`~masquerade.runtime.PASSES_THROUGH` check.
"""

from __future__ import annotations

import inspect
import logging
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

from .runtime import PASSES_THROUGH
from .tools import masquerade_tool_invoke as builtin_tool_invoke

if TYPE_CHECKING:
    from .session import Session

__all__ = ["ToolChain"]

logger = logging.getLogger("masquerade.host")


class ToolChain:
    """Whether a session's tool calls may skip pluggy's ``masquerade_tool_invoke`` call:
    the chain is the built-in invocation and wrappers whose
    :data:`~masquerade.runtime.PASSES_THROUGH` check says they hand that session's calls
    through. What the chain holds is compared per call (a copy of a short list), so a
    plugin registered or removed any way is seen at once; hook-call monitoring
    (``pm.add_hookcall_monitoring``) always gets the chain."""

    __slots__ = ("_caller", "_checks", "_hookexec", "_impls", "_pm")

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._caller = pm.hook.masquerade_tool_invoke
        self._hookexec = pm._inner_hookexec  # pluggy's own, until monitoring replaces it
        self._impls: list[pluggy.HookImpl] = []
        self._checks: tuple[Callable[[Session], bool], ...] | None = None

    def direct(self, session: Session) -> bool:
        impls = self._caller.get_hookimpls()
        if impls != self._impls:
            self._impls = impls
            self._checks = _pass_through_checks(impls)
        checks = self._checks
        if checks is None or self._pm._inner_hookexec is not self._hookexec:
            return False
        try:
            for check in checks:
                if not check(session):
                    return False
        except Exception:  # a failing check: the chain decides, as it would without one
            logger.debug("a masquerade_passes_through check raised", exc_info=True)
            return False
        return True


def _pass_through_checks(
    impls: list[pluggy.HookImpl],
) -> tuple[Callable[[Session], bool], ...] | None:
    """The checks of the chain's wrappers, or ``None`` when the chain cannot be skipped
    (another implementation, an old-style hookwrapper, a wrapper without a check, or no
    built-in invocation at all)."""
    checks: list[Callable[[Session], bool]] = []
    builtin = False
    for impl in impls:
        if impl.hookwrapper:
            return None
        if not impl.wrapper:
            if impl.function is not builtin_tool_invoke:
                return None
            builtin = True
            continue
        check = getattr(impl.function, PASSES_THROUGH, None)
        if not callable(check):
            return None
        if inspect.ismethod(impl.function):
            check = types.MethodType(check, impl.function.__self__)
        checks.append(check)
    return tuple(checks) if builtin else None
