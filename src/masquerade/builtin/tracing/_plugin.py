"""The :class:`Tracing` plugin class: its hooks, over the session, tool and graph spans."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace

from ... import _semconv as sc
from ...hookspecs import hookimpl
from ._attributes import VERSION
from ._graph import GraphSpans
from ._metrics import Metrics
from ._sessions import HANDLERS, SKIPPED, SessionSpans, SessionTrace
from ._tools import ToolSpans

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from ...events import BaseEvent, ToolCall, ToolResult
    from ...session import Session, SessionResult

__all__ = ["Tracing"]

logger = logging.getLogger("masquerade.tracing")

# What the OpenTelemetry API returns while no SDK has set a global provider (or what an
# application sets to switch telemetry off).
_UNSET = frozenset({"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider",
                    "NoOpMeterProvider"})


class Tracing(SessionSpans, ToolSpans, GraphSpans):
    """The tracing plugin. The built-in one uses the global providers; make your own to
    pass providers explicitly (see the module docs).

    Args:
        tracer_provider: where spans go (default: the global provider, looked up lazily,
            so an SDK configured after import is still used).
        meter_provider: where metrics go (default: the global one).
        capture_content: record transcripts, tool arguments and results. ``None`` (the
            default) reads ``MASQUERADE_CAPTURE_CONTENT`` when each session starts.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_content: bool | None = None,
    ) -> None:
        self.capture_content = capture_content
        self.tracer = trace.get_tracer(sc.SCOPE_NAME, VERSION, tracer_provider=tracer_provider)
        self._metrics = Metrics(meter_provider)
        self._sessions: dict[str, SessionTrace] = {}
        # Providers passed in always listen; the global ones only once an SDK set them.
        self._listening = tracer_provider is not None or meter_provider is not None
        #: Sessions that started while nothing listened: never traced (decided once per
        #: session, like ``capture_content``).
        self._untraced: set[str] = set()

    def listening(self) -> bool:
        """Whether spans or metrics go anywhere: a provider was passed in, or an SDK set a
        global one (sticky: a global provider cannot be unset). A session that starts
        before then is not traced at all (every span would be a no-op)."""
        if not self._listening:
            self._listening = not (
                type(trace.get_tracer_provider()).__name__ in _UNSET
                and type(metrics.get_meter_provider()).__name__ in _UNSET
            )
        return self._listening

    def __repr__(self) -> str:
        return f"<Tracing sessions={len(self._sessions)} capture_content={self.capture_content}>"

    # ------------------------------------------------------------------ hooks
    @hookimpl
    def masquerade_session_event(self, session: Session, event: BaseEvent) -> None:
        kind = event.type
        if kind in SKIPPED:
            return
        trace_ = self._sessions.get(session.id)
        if trace_ is None:
            if kind == "ended" or session.id in self._untraced:
                return
            if not self.listening():
                self._untraced.add(session.id)
                return
            trace_ = self._start(session)
        try:
            if not trace_.ids_recorded and session.provider_session_id:
                self._record_ids(trace_, session)
            handler = HANDLERS.get(kind)
            if handler is not None:
                handler(self, trace_, event)
        except Exception:  # a failing SDK or processor must never surface in the session
            logger.debug("tracing a %s event failed", kind, exc_info=True)

    # The session does not even call the observer for the skipped types.
    masquerade_session_event.masquerade_ignores = SKIPPED  # type: ignore[attr-defined]

    @hookimpl
    def masquerade_session_ended(self, session: Session, result: SessionResult) -> None:
        self._untraced.discard(session.id)
        trace_ = self._sessions.pop(session.id, None)
        if trace_ is None:
            return
        try:
            self._finish(trace_, session, result)
        except Exception:  # an SDK failure must never surface in the session
            logger.debug("ending the span of session %s failed", session.id, exc_info=True)

    # tryfirst: the outermost wrapper, so the span covers the whole chain (other plugins'
    # auth, caching or retry wrappers included) and records the one answer the model gets.
    @hookimpl(wrapper=True, tryfirst=True)
    def masquerade_tool_invoke(
        self, call: ToolCall, session: Session
    ) -> Generator[None, Awaitable[ToolResult] | None, Awaitable[ToolResult] | None]:
        inner = yield
        if inner is None or session.id in self._untraced or not self.listening():
            return inner
        return self._traced_tool(call, session, inner)

    def _passes_through(self, session: Session) -> bool:
        """Whether this session's tool calls pass through unchanged (it is not traced):
        the host then calls the built-in invocation directly (see ``PASSES_THROUGH``)."""
        return session.id in self._untraced

    masquerade_tool_invoke.masquerade_passes_through = _passes_through  # type: ignore[attr-defined]
