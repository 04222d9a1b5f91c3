"""Parent spans for graph runs: ``invoke_workflow {graph}`` and ``node {node}``."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import anyio
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from ... import _semconv as sc
from ..._redact import redact
from ._attributes import record_exception

logger = logging.getLogger("masquerade.tracing")


class GraphSpans:
    """The graph half of :class:`~masquerade.builtin.tracing.Tracing`."""

    tracer: Tracer

    @contextmanager
    def workflow_span(
        self, name: str | None, *, attributes: Mapping[str, Any] | None = None
    ) -> Iterator[Span]:
        """See :func:`workflow_span`."""
        base: dict[str, Any] = {sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_WORKFLOW}
        if name:
            base[sc.GEN_AI_WORKFLOW_NAME] = name
            base[sc.GRAPH_NAME] = name
        with self._current_span(sc.workflow_span_name(name), base, attributes) as span:
            yield span

    @contextmanager
    def node_span(
        self,
        name: str,
        *,
        graph: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Iterator[Span]:
        """See :func:`node_span`."""
        base: dict[str, Any] = {sc.GRAPH_NODE: name}
        if graph:
            base[sc.GRAPH_NAME] = graph
        with self._current_span(sc.node_span_name(name), base, attributes) as span:
            yield span

    @contextmanager
    def _current_span(
        self, name: str, base: dict[str, Any], extra: Mapping[str, Any] | None
    ) -> Iterator[Span]:
        if extra:
            base.update(extra)
        try:
            span = self.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=base)
        except Exception:  # the graph goes on untraced
            logger.debug("starting span %s failed", name, exc_info=True)
            span = trace.INVALID_SPAN
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                yield span
        except anyio.get_cancelled_exc_class():
            self._annotate(span, None)
            raise
        except Exception as exc:
            self._annotate(span, exc)
            raise
        finally:
            try:
                span.end()
            except Exception:
                logger.debug("ending span %s failed", name, exc_info=True)

    @staticmethod
    def _annotate(span: Span, exc: Exception | None) -> None:
        try:
            if exc is None:  # cancelled: the run was stopped, it did not fail
                span.set_attribute(sc.GEN_AI_AGENT_INVOCATION_END_REASON, sc.END_REASON_INTERRUPTED)
                return
            span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
            record_exception(span, exc)
            span.set_status(Status(StatusCode.ERROR, redact(f"{type(exc).__name__}: {exc}")))
        except Exception:
            logger.debug("annotating a span failed", exc_info=True)
