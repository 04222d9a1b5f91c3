"""Built-in ``tracing`` plugin: OpenTelemetry spans and metrics for every session.

It uses ``opentelemetry-api`` only and never installs or replaces a tracer or meter
provider: configure the OpenTelemetry SDK in your application (or run the CLI with
``--trace``) and the spans appear; without an SDK, tracing costs next to nothing.

What a session looks like (GenAI semantic conventions, names in :mod:`masquerade._semconv`)::

    invoke_workflow {graph}                 INTERNAL  (when the session runs in a graph)
    └─ node {node}                          INTERNAL
       └─ invoke_agent {avatar or name}     CLIENT    one per session
          ├─ events: status changes, queued, ready (with the wait), errors
          ├─ realtime_inference {model}     CLIENT    one per provider response
          └─ execute_tool {tool}            INTERNAL  one per tool call; the tool runs
                                                      inside it, so its own spans nest

Transcripts, tool arguments and tool results are recorded only when content capture is
on: ``Tracing(capture_content=True)`` or ``MASQUERADE_CAPTURE_CONTENT=1``. Everything
recorded passes through the shared redaction.

Use your own providers (tests, several pipelines in one process) by registering an
instance instead of the built-in::

    from masquerade.builtin.tracing import Tracing

    host = Host(
        plugins=[Tracing(tracer_provider=my_provider, meter_provider=my_meters)],
        environ={"MASQUERADE_DISABLE_PLUGINS": "tracing"},
    )

Graphs open the parent spans with :func:`workflow_span` and :func:`node_span`; a session
started inside them becomes their child (OpenTelemetry's context travels with the task).
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import anyio
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import NoOpTracer, Span, SpanKind, Status, StatusCode

from .. import _semconv as sc
from .._redact import redact, redact_mapping
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from ..events import BaseEvent, ToolCall, ToolResult
    from ..host import Host
    from ..session import Session, SessionResult

__all__ = ["Tracing", "workflow_span", "node_span", "CAPTURE_CONTENT_ENV"]

logger = logging.getLogger("masquerade.tracing")

#: Set to ``1`` (or ``true``) to record transcripts, tool arguments and tool results.
CAPTURE_CONTENT_ENV = "MASQUERADE_CAPTURE_CONTENT"

try:
    _VERSION = version("masquerade")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0.0.0"

# Events that carry nothing a span needs; skipped before any other work (audio deltas
# arrive at 10-50 per second per session).
_SKIPPED = frozenset({"audio.delta", "transcript.delta", "provider", "tool.call", "tool.result"})


def _env_flag(environ: Mapping[str, str], key: str) -> bool:
    return environ.get(key, "").strip().lower() in ("1", "true", "yes", "on")


def _json(value: Any) -> str:
    """Content as a redacted JSON string (span attributes cannot hold structures)."""
    return json.dumps(redact_mapping(_jsonable(value)), ensure_ascii=False, default=str)


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


def _text_messages(role: str, texts: list[str]) -> str:
    return _json([{"role": role, "parts": [{"type": "text", "content": t}]} for t in texts])


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class _SessionTrace:
    """What the plugin keeps about one running session."""

    span: Span
    context: otel_context.Context
    capture: bool
    metric_attrs: dict[str, str]
    started: float
    queued_at: float | None = None
    queue_wait: float | None = None
    ids_recorded: bool = False
    # Open provider responses by response id, in start order.
    responses: dict[str | None, tuple[Span, float]] = field(default_factory=dict)


class Tracing:
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
        self.tracer = trace.get_tracer(sc.SCOPE_NAME, _VERSION, tracer_provider=tracer_provider)
        meter = metrics.get_meter(sc.SCOPE_NAME, _VERSION, meter_provider=meter_provider)
        self._operation_duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        )
        self._token_usage = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Tokens used per provider response",
            explicit_bucket_boundaries_advisory=[float(b) for b in sc.TOKEN_BUCKETS],
        )
        self._tool_duration = meter.create_histogram(
            sc.METRIC_TOOL_DURATION,
            unit="s",
            description="Duration of tool calls, by tool",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        )
        self._provisioning = meter.create_histogram(
            sc.METRIC_PROVISIONING_DURATION,
            unit="s",
            description="Time from session start until it was ready to join",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        )
        self._queue_wait = meter.create_histogram(
            sc.METRIC_QUEUE_DURATION,
            unit="s",
            description="Time a session waited in the provider's capacity queue",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        )
        self._session_duration = meter.create_histogram(
            sc.METRIC_SESSION_DURATION,
            unit="s",
            description="Session duration, start to end",
            explicit_bucket_boundaries_advisory=list(sc.SESSION_BUCKETS),
        )
        self._active = meter.create_up_down_counter(
            sc.METRIC_ACTIVE_SESSIONS, unit="{session}", description="Sessions running now"
        )
        self._sessions: dict[str, _SessionTrace] = {}

    def __repr__(self) -> str:
        return f"<Tracing sessions={len(self._sessions)} capture_content={self.capture_content}>"

    # ------------------------------------------------------------------ hooks
    @hookimpl
    def masquerade_session_event(self, session: Session, event: BaseEvent) -> None:
        kind = event.type
        if kind in _SKIPPED:
            return
        trace_ = self._sessions.get(session.id)
        if trace_ is None:
            if kind == "ended":
                return
            trace_ = self._start(session)
        try:
            if not trace_.ids_recorded and session.provider_session_id:
                self._record_ids(trace_, session)
            handler = _HANDLERS.get(kind)
            if handler is not None:
                handler(self, trace_, event)
        except Exception:  # a failing SDK or processor must never surface in the session
            logger.debug("tracing a %s event failed", kind, exc_info=True)

    @hookimpl
    def masquerade_session_ended(self, session: Session, result: SessionResult) -> None:
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
        if inner is None:
            return None
        return self._traced_tool(call, session, inner)

    # ------------------------------------------------------------------ session span
    def _start(self, session: Session) -> _SessionTrace:
        request = session.request
        capture = (
            self.capture_content
            if self.capture_content is not None
            else _env_flag(os.environ, CAPTURE_CONTENT_ENV)
        )
        agent = request.name or request.avatar
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
            sc.GEN_AI_PROVIDER_NAME: session.provider,
            sc.GEN_AI_OUTPUT_TYPE: sc.OUTPUT_TYPE_SPEECH,
            sc.SESSION_ID: session.id,
        }
        if request.model:
            attributes[sc.GEN_AI_REQUEST_MODEL] = request.model
        if agent:
            attributes[sc.GEN_AI_AGENT_NAME] = agent
        if request.avatar:
            attributes[sc.SESSION_AVATAR] = request.avatar
        conversation = request.metadata.get("conversation_id")
        if isinstance(conversation, str) and conversation:
            attributes[sc.GEN_AI_CONVERSATION_ID] = conversation
        if capture and request.personality:
            attributes[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = _json(
                [{"type": "text", "content": request.personality}]
            )
        # Started in the current context: inside a graph's node span, the session is its
        # child; otherwise it is the root of its own trace.
        try:
            span = self.tracer.start_span(
                sc.agent_span_name(agent), kind=SpanKind.CLIENT, attributes=attributes
            )
        except Exception:  # the session goes on untraced
            logger.debug("starting the span of session %s failed", session.id, exc_info=True)
            span = trace.INVALID_SPAN
        metric_attrs = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
            sc.GEN_AI_PROVIDER_NAME: session.provider,
        }
        if request.model:
            metric_attrs[sc.GEN_AI_REQUEST_MODEL] = request.model
        trace_ = _SessionTrace(
            span=span,
            context=trace.set_span_in_context(span),
            capture=capture,
            metric_attrs=metric_attrs,
            started=time.monotonic(),
        )
        self._sessions[session.id] = trace_
        try:
            self._active.add(1, {sc.GEN_AI_PROVIDER_NAME: session.provider})
        except Exception:
            logger.debug("recording an active session failed", exc_info=True)
        return trace_

    def _record_ids(self, trace_: _SessionTrace, session: Session) -> None:
        trace_.ids_recorded = True
        provider_id = session.provider_session_id
        span = trace_.span
        span.set_attribute(sc.PROVIDER_SESSION_ID, str(provider_id))
        if session.provider in sc.REALTIME_SESSION_ID_PROVIDERS:
            span.set_attribute(sc.GEN_AI_REALTIME_SESSION_ID, str(provider_id))
        else:
            # The provider's id names the whole conversation (Runway's avatar session);
            # masquerade's own id names this one connection to it.
            span.set_attribute(sc.GEN_AI_REALTIME_SESSION_ID, session.id)
            if not isinstance(session.request.metadata.get("conversation_id"), str):
                span.set_attribute(sc.GEN_AI_CONVERSATION_ID, str(provider_id))

    def _on_status(self, trace_: _SessionTrace, event: Any) -> None:
        data = event.__dict__
        attributes: dict[str, Any] = {sc.SESSION_STATE: data["state"], sc.QUEUED: data["queued"]}
        if data["provider_status"]:
            attributes[sc.PROVIDER_STATUS] = data["provider_status"]
        if data["waited_s"] is not None:
            attributes[sc.WAITED_S] = data["waited_s"]
        now = time.monotonic()
        if data["queued"]:
            if trace_.queued_at is None:
                trace_.queued_at = now
                trace_.span.add_event(sc.EVENT_QUEUED, attributes)
                return
        elif trace_.queued_at is not None and trace_.queue_wait is None:
            trace_.queue_wait = now - trace_.queued_at
        trace_.span.add_event(sc.EVENT_STATUS, attributes)

    def _on_ready(self, trace_: _SessionTrace, event: Any) -> None:
        # Never touch event.credentials: they are the frontend's join secrets.
        now = time.monotonic()
        waited = event.waited_s if event.waited_s is not None else now - trace_.started
        attributes: dict[str, Any] = {sc.WAITED_S: waited}
        if trace_.queued_at is not None:
            if trace_.queue_wait is None:
                trace_.queue_wait = now - trace_.queued_at
            attributes["masquerade.queue_wait_s"] = round(trace_.queue_wait, 6)
            self._queue_wait.record(trace_.queue_wait, trace_.metric_attrs)
        trace_.span.add_event(sc.EVENT_READY, attributes)
        self._provisioning.record(waited, trace_.metric_attrs)

    def _on_response_started(self, trace_: _SessionTrace, event: Any) -> None:
        model = trace_.metric_attrs.get(sc.GEN_AI_REQUEST_MODEL)
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_REALTIME_INFERENCE,
            sc.GEN_AI_PROVIDER_NAME: trace_.metric_attrs[sc.GEN_AI_PROVIDER_NAME],
        }
        if model:
            attributes[sc.GEN_AI_REQUEST_MODEL] = model
        if event.response_id:
            attributes[sc.GEN_AI_RESPONSE_ID] = event.response_id
        # The provider's reader task was started long before this response: parent the
        # span on the session explicitly instead of on whatever context that task has.
        span = self.tracer.start_span(
            sc.inference_span_name(model),
            context=trace_.context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        stale = trace_.responses.pop(event.response_id, None)
        if stale is not None:  # the same id started twice: close the first one
            stale[0].end()
        trace_.responses[event.response_id] = (span, time.monotonic())

    def _on_response_done(self, trace_: _SessionTrace, event: Any) -> None:
        opened = trace_.responses.pop(event.response_id, None)
        if opened is None and event.response_id is None and trace_.responses:
            opened = trace_.responses.pop(next(reversed(trace_.responses)))
        if opened is None:
            return  # its start was never seen: no reliable span (as the conventions ask)
        span, started = opened
        status = event.status or "completed"
        # One set_attributes call: each SDK call takes the span's lock.
        attributes: dict[str, Any] = {
            sc.RESPONSE_STATUS: status,
            sc.GEN_AI_RESPONSE_FINISH_REASONS: [event.reason or status],
        }
        attrs = dict(trace_.metric_attrs)
        attrs[sc.GEN_AI_OPERATION_NAME] = sc.OP_REALTIME_INFERENCE
        usage = event.usage or {}
        for key, attribute, token_type in (
            ("input_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS, "input"),
            ("output_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS, "output"),
        ):
            count = _int(usage.get(key))
            if count is not None:
                attributes[attribute] = count
                self._token_usage.record(count, {**attrs, sc.GEN_AI_TOKEN_TYPE: token_type})
        if status == "failed":
            error_type = event.reason or "failed"
            attributes[sc.ERROR_TYPE] = attrs[sc.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, error_type))
        # "cancelled" (a barge-in) and "incomplete" are outcomes, not errors.
        span.set_attributes(attributes)
        self._operation_duration.record(time.monotonic() - started, attrs)
        span.end()

    def _on_transcript(self, trace_: _SessionTrace, event: Any) -> None:
        if not trace_.capture:
            return
        text = redact(event.text)
        trace_.span.add_event(
            sc.EVENT_TRANSCRIPT, {"role": event.role, "content": text, "turn": str(event.turn)}
        )
        if event.role == "assistant" and trace_.responses:
            span, _ = trace_.responses[next(reversed(trace_.responses))]
            span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, _text_messages("assistant", [text]))

    def _on_speech(self, trace_: _SessionTrace, event: Any) -> None:
        started = event.type == "speech.started"
        name = sc.EVENT_SPEECH_STARTED if started else sc.EVENT_SPEECH_STOPPED
        attributes = {"audio_ms": event.audio_ms} if event.audio_ms is not None else None
        trace_.span.add_event(name, attributes)

    def _on_client_event(self, trace_: _SessionTrace, event: Any) -> None:
        attributes: dict[str, Any] = {sc.EVENT_NAME: event.name}
        if trace_.capture:
            attributes["arguments"] = _json(event.args)
        trace_.span.add_event(sc.EVENT_CLIENT_EVENT, attributes)

    def _on_error(self, trace_: _SessionTrace, event: Any) -> None:
        trace_.span.add_event(
            sc.EVENT_ERROR,
            {
                sc.ERROR_CODE: event.code or "error",
                sc.ERROR_FATAL: event.fatal,
                sc.ERROR_MESSAGE: redact(event.message),
            },
        )

    def _finish(self, trace_: _SessionTrace, session: Session, result: SessionResult) -> None:
        span = trace_.span
        for opened, _ in trace_.responses.values():  # responses cut off by the end
            opened.set_attribute(sc.GEN_AI_RESPONSE_FINISH_REASONS, [sc.END_REASON_SESSION_CLOSED])
            opened.end()
        trace_.responses.clear()
        if not trace_.ids_recorded and session.provider_session_id:
            self._record_ids(trace_, session)
        span.set_attribute(sc.SESSION_OUTCOME, result.outcome)
        span.set_attribute(sc.SESSION_END_REASON, result.reason)
        span.set_attribute(sc.SESSION_TOOL_CALLS, len(result.tool_calls))
        if result.dropped_audio:
            span.set_attribute(sc.SESSION_DROPPED_AUDIO, result.dropped_audio)
        for key, attribute in (
            ("input_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS),
            ("output_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
        ):
            count = _int(result.usage.get(key))
            if count is not None:
                span.set_attribute(attribute, count)
        if trace_.capture and result.transcript:
            said = [t.text for t in result.transcript if t.role == "user" and t.text]
            answered = [t.text for t in result.transcript if t.role == "assistant" and t.text]
            if said:
                span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, _text_messages("user", said))
            if answered:
                span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, _text_messages("assistant", answered))
        attrs = dict(trace_.metric_attrs)
        if result.outcome == "failed":
            error_type = result.failure_code or _error_class(result.error) or "failed"
            span.set_attribute(sc.ERROR_TYPE, error_type)
            if result.failure_code:
                span.set_attribute(sc.SESSION_FAILURE_CODE, result.failure_code)
            span.set_status(Status(StatusCode.ERROR, redact(result.failure or error_type)))
            attrs[sc.ERROR_TYPE] = error_type
        if result.provider_ended is False:
            # The cancel path failed: the session may still run (and bill) at the provider.
            span.set_attribute(sc.SESSION_PROVIDER_ENDED, False)
            span.set_attribute(sc.ERROR_TYPE, "unended")
            span.set_status(
                Status(StatusCode.ERROR, "could not end the session at the provider")
            )
        duration = time.monotonic() - trace_.started
        span.end()
        self._operation_duration.record(duration, attrs)
        self._session_duration.record(
            duration,
            {
                sc.GEN_AI_PROVIDER_NAME: session.provider,
                sc.SESSION_OUTCOME: result.outcome,
            },
        )
        self._active.add(-1, {sc.GEN_AI_PROVIDER_NAME: session.provider})

    # ------------------------------------------------------------------ tool spans
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

    def _tool_span(
        self, call: ToolCall, session: Session, trace_: _SessionTrace | None
    ) -> Span:
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
            attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = _json(call.arguments)
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
        trace_: _SessionTrace | None,
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
                    _record_exception(span, exc)
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
                    _json({"error": result.error} if result.error is not None else result.output),
                )
            duration = time.monotonic() - started
            span.end()
            attrs: dict[str, str] = {
                sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                sc.GEN_AI_PROVIDER_NAME: session.provider,
            }
            if error_type is not None:
                attrs[sc.ERROR_TYPE] = error_type
            self._operation_duration.record(duration, attrs)
            self._tool_duration.record(duration, {**attrs, sc.GEN_AI_TOOL_NAME: call.name})
        except Exception:
            logger.debug("ending the span of tool %s failed", call.name, exc_info=True)

    # ------------------------------------------------------------------ graph spans
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
                span.set_attribute(
                    sc.GEN_AI_AGENT_INVOCATION_END_REASON, sc.END_REASON_INTERRUPTED
                )
                return
            span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
            _record_exception(span, exc)
            span.set_status(Status(StatusCode.ERROR, redact(f"{type(exc).__name__}: {exc}")))
        except Exception:
            logger.debug("annotating a span failed", exc_info=True)


def _error_class(error: str | None) -> str | None:
    if not error:
        return None
    head = error.split(":", 1)[0].strip()
    return head if head.isidentifier() else None


def _record_exception(span: Span, exc: BaseException) -> None:
    """``span.record_exception`` with the message and traceback redacted."""
    span.add_event(
        "exception",
        {
            "exception.type": type(exc).__qualname__,
            "exception.message": redact(str(exc)),
            "exception.stacktrace": redact(
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            ),
        },
    )


_HANDLERS: dict[str, Any] = {
    "status": Tracing._on_status,
    "ready": Tracing._on_ready,
    "response.started": Tracing._on_response_started,
    "response.done": Tracing._on_response_done,
    "transcript.done": Tracing._on_transcript,
    "speech.started": Tracing._on_speech,
    "speech.stopped": Tracing._on_speech,
    "client_event": Tracing._on_client_event,
    "error": Tracing._on_error,
}

# ---------------------------------------------------------------------- the built-in
#: The instance behind the built-in plugin (global providers, capture from the env).
default = Tracing()

# The module is the registered plugin: its hooks are the default instance's.
masquerade_session_event = default.masquerade_session_event
masquerade_session_ended = default.masquerade_session_ended
masquerade_tool_invoke = default.masquerade_tool_invoke


def _for_host(host: Host | None) -> Tracing | None:
    if host is None:
        return default
    found: Tracing | None = None
    for plugin in host.pm.get_plugins():
        if isinstance(plugin, Tracing):
            found = plugin
        elif getattr(plugin, "default", None) is default:  # this module
            found = found or default
    return found


_NOOP = NoOpTracer()


@contextmanager
def workflow_span(
    name: str | None,
    *,
    host: Host | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """Open the ``invoke_workflow {name}`` span of a graph run and make it current.

    Sessions and node spans opened inside the block (in this task or in tasks it starts)
    become its children. An exception leaving the block marks it failed (message
    redacted); cancellation does not. With ``host``, the span goes to that host's tracing
    plugin (none when the plugin is disabled there)::

        with workflow_span("support-flow", host=host):
            with node_span("concierge", graph="support-flow", host=host):
                result = await host.run_session(request)

    Open and close it in the same task (in an async generator, around code that does
    not yield), as for any OpenTelemetry context.
    """
    plugin = _for_host(host)
    if plugin is None:
        with trace.use_span(_NOOP.start_span("noop"), end_on_exit=True) as span:
            yield span
        return
    with plugin.workflow_span(name, attributes=attributes) as span:
        yield span


@contextmanager
def node_span(
    name: str,
    *,
    graph: str | None = None,
    host: Host | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """Open the span of one graph node run (``node {name}``) and make it current.

    Works like :func:`workflow_span`; an AvatarNode's session started inside it becomes
    its child.
    """
    plugin = _for_host(host)
    if plugin is None:
        with trace.use_span(_NOOP.start_span("noop"), end_on_exit=True) as span:
            yield span
        return
    with plugin.node_span(name, graph=graph, attributes=attributes) as span:
        yield span
