"""One ``execute_tool {name}`` span per tool call, around the whole invocation chain."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import anyio
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from ... import _semconv as sc
from ..._redact import redact
from ._attributes import as_json, record_exception
from ._metrics import Metrics
from ._sessions import SessionTrace

if TYPE_CHECKING:
    from ...events import ToolCall, ToolResult
    from ...session import Session

logger = logging.getLogger("masquerade.tracing")


class ToolSpans:
    """The tool half of :class:`~masquerade.builtin.tracing.Tracing`."""

    tracer: Tracer
    _metrics: Metrics
    _sessions: dict[str, SessionTrace]

    async def _traced_tool(
        self, call: ToolCall, session: Session, inner: Awaitable[ToolResult]
    ) -> ToolResult:
        trace_ = self._sessions.get(session.id)
        try:
            span = self._tool_span(call, session, trace_)
        except Exception:  # no span is better than a failed tool call
            logger.debug("starting the span of tool %s failed", call.name, exc_info=True)
            return await inner
        started = time.monotonic()
        try:
            # The tool runs with its span as the current one, so spans it opens (an HTTP
            # client's, a database's) become children; worker threads copy the context.
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                result = await inner
        except anyio.get_cancelled_exc_class():
            self._end_tool(span, call, session, trace_, started, "cancelled", None)
            raise
        except Exception as exc:
            self._end_tool(span, call, session, trace_, started, type(exc).__qualname__, exc)
            raise
        self._end_tool(span, call, session, trace_, started, None, None, result)
        return result

    def _tool_span(self, call: ToolCall, session: Session, trace_: SessionTrace | None) -> Span:
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.GEN_AI_PROVIDER_NAME: session.provider,
            sc.GEN_AI_TOOL_NAME: call.name,
            sc.GEN_AI_TOOL_CALL_ID: call.call_id,
            sc.GEN_AI_TOOL_TYPE: sc.TOOL_TYPE_FUNCTION,
        }
        known = session.tools.get(call.name)
        if known is not None and known.description:
            attributes[sc.GEN_AI_TOOL_DESCRIPTION] = known.description
        if trace_ is not None and trace_.capture:
            attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = as_json(call.arguments)
        return self.tracer.start_span(
            sc.tool_span_name(call.name),
            context=trace_.context if trace_ is not None else None,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )

    def _end_tool(
        self,
        span: Span,
        call: ToolCall,
        session: Session,
        trace_: SessionTrace | None,
        started: float,
        error_type: str | None,
        exc: BaseException | None,
        result: ToolResult | None = None,
    ) -> None:
        try:
            capture = trace_ is not None and trace_.capture
            if result is not None and result.error is not None:
                error_type = result.error_type or "error"
            if error_type == "cancelled":
                # Cancellation (the session ended, a barge-in) is not a tool failure.
                span.set_attribute(sc.TOOL_OUTCOME, "cancelled")
            elif error_type is not None:
                span.set_attribute(sc.TOOL_OUTCOME, "error")
                span.set_attribute(sc.ERROR_TYPE, error_type)
                if exc is not None:
                    record_exception(span, exc)
                    detail = redact(f"{type(exc).__name__}: {exc}")
                else:
                    assert result is not None
                    detail = redact(result.error or "") if capture else f"tool failed: {error_type}"
                span.set_status(Status(StatusCode.ERROR, detail))
            else:
                span.set_attribute(sc.TOOL_OUTCOME, "ok")
            if capture and result is not None:
                span.set_attribute(
                    sc.GEN_AI_TOOL_CALL_RESULT,
                    as_json({"error": result.error} if result.error is not None else result.output),
                )
            duration = time.monotonic() - started
            span.end()
            attrs: dict[str, str] = {
                sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                sc.GEN_AI_PROVIDER_NAME: session.provider,
            }
            if error_type is not None:
                attrs[sc.ERROR_TYPE] = error_type
            self._metrics.operation_duration.record(duration, attrs)
            self._metrics.tool_duration.record(duration, {**attrs, sc.GEN_AI_TOOL_NAME: call.name})
        except Exception:
            logger.debug("ending the span of tool %s failed", call.name, exc_info=True)
