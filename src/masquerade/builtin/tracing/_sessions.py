"""The span of one session (``invoke_agent``), its events, and one
``realtime_inference`` span per provider response."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from ... import _semconv as sc
from ..._redact import redact
from ._attributes import as_int, as_json, env_flag, error_class, text_messages
from ._metrics import Metrics

if TYPE_CHECKING:
    from ...session import Session, SessionResult

logger = logging.getLogger("masquerade.tracing")

#: Set to ``1`` (or ``true``) to record transcripts, tool arguments and tool results.
CAPTURE_CONTENT_ENV = "MASQUERADE_CAPTURE_CONTENT"

# Events that carry nothing a span needs; skipped before any other work (audio deltas
# arrive at 10-50 per second per session).
SKIPPED = frozenset({"audio.delta", "transcript.delta", "provider", "tool.call", "tool.result"})


@dataclass
class SessionTrace:
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


class SessionSpans:
    """The session half of :class:`~masquerade.builtin.tracing.Tracing`."""

    tracer: Tracer
    capture_content: bool | None
    _metrics: Metrics
    _sessions: dict[str, SessionTrace]

    def _start(self, session: Session) -> SessionTrace:
        request = session.request
        capture = (
            self.capture_content
            if self.capture_content is not None
            else env_flag(os.environ, CAPTURE_CONTENT_ENV)
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
            attributes[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = as_json(
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
        trace_ = SessionTrace(
            span=span,
            context=trace.set_span_in_context(span),
            capture=capture,
            metric_attrs=metric_attrs,
            started=time.monotonic(),
        )
        self._sessions[session.id] = trace_
        try:
            self._metrics.active.add(1, {sc.GEN_AI_PROVIDER_NAME: session.provider})
        except Exception:
            logger.debug("recording an active session failed", exc_info=True)
        return trace_

    def _record_ids(self, trace_: SessionTrace, session: Session) -> None:
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

    def _on_status(self, trace_: SessionTrace, event: Any) -> None:
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

    def _on_ready(self, trace_: SessionTrace, event: Any) -> None:
        # Never touch event.credentials: they are the frontend's join secrets.
        now = time.monotonic()
        waited = event.waited_s if event.waited_s is not None else now - trace_.started
        attributes: dict[str, Any] = {sc.WAITED_S: waited}
        if trace_.queued_at is not None:
            if trace_.queue_wait is None:
                trace_.queue_wait = now - trace_.queued_at
            attributes["masquerade.queue_wait_s"] = round(trace_.queue_wait, 6)
            self._metrics.queue_wait.record(trace_.queue_wait, trace_.metric_attrs)
        trace_.span.add_event(sc.EVENT_READY, attributes)
        self._metrics.provisioning.record(waited, trace_.metric_attrs)

    def _on_response_started(self, trace_: SessionTrace, event: Any) -> None:
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

    def _on_response_done(self, trace_: SessionTrace, event: Any) -> None:
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
            count = as_int(usage.get(key))
            if count is not None:
                attributes[attribute] = count
                self._metrics.token_usage.record(count, {**attrs, sc.GEN_AI_TOKEN_TYPE: token_type})
        if status == "failed":
            error_type = event.reason or "failed"
            attributes[sc.ERROR_TYPE] = attrs[sc.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, error_type))
        # "cancelled" (a barge-in) and "incomplete" are outcomes, not errors.
        span.set_attributes(attributes)
        self._metrics.operation_duration.record(time.monotonic() - started, attrs)
        span.end()

    def _on_transcript(self, trace_: SessionTrace, event: Any) -> None:
        if not trace_.capture:
            return
        text = redact(event.text)
        trace_.span.add_event(
            sc.EVENT_TRANSCRIPT, {"role": event.role, "content": text, "turn": str(event.turn)}
        )
        if event.role == "assistant" and trace_.responses:
            span, _ = trace_.responses[next(reversed(trace_.responses))]
            span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, text_messages("assistant", [text]))

    def _on_speech(self, trace_: SessionTrace, event: Any) -> None:
        started = event.type == "speech.started"
        name = sc.EVENT_SPEECH_STARTED if started else sc.EVENT_SPEECH_STOPPED
        attributes = {"audio_ms": event.audio_ms} if event.audio_ms is not None else None
        trace_.span.add_event(name, attributes)

    def _on_client_event(self, trace_: SessionTrace, event: Any) -> None:
        attributes: dict[str, Any] = {sc.EVENT_NAME: event.name}
        if trace_.capture:
            attributes["arguments"] = as_json(event.args)
        trace_.span.add_event(sc.EVENT_CLIENT_EVENT, attributes)

    def _on_error(self, trace_: SessionTrace, event: Any) -> None:
        trace_.span.add_event(
            sc.EVENT_ERROR,
            {
                sc.ERROR_CODE: event.code or "error",
                sc.ERROR_FATAL: event.fatal,
                sc.ERROR_MESSAGE: redact(event.message),
            },
        )

    def _finish(self, trace_: SessionTrace, session: Session, result: SessionResult) -> None:
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
            count = as_int(result.usage.get(key))
            if count is not None:
                span.set_attribute(attribute, count)
        if trace_.capture and result.transcript:
            said = [t.text for t in result.transcript if t.role == "user" and t.text]
            answered = [t.text for t in result.transcript if t.role == "assistant" and t.text]
            if said:
                span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, text_messages("user", said))
            if answered:
                span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, text_messages("assistant", answered))
        attrs = dict(trace_.metric_attrs)
        if result.outcome == "failed":
            error_type = result.failure_code or error_class(result.error) or "failed"
            span.set_attribute(sc.ERROR_TYPE, error_type)
            if result.failure_code:
                span.set_attribute(sc.SESSION_FAILURE_CODE, result.failure_code)
            span.set_status(Status(StatusCode.ERROR, redact(result.failure or error_type)))
            attrs[sc.ERROR_TYPE] = error_type
        if result.provider_ended is False:
            # The cancel path failed: the session may still run (and bill) at the provider.
            span.set_attribute(sc.SESSION_PROVIDER_ENDED, False)
            span.set_attribute(sc.ERROR_TYPE, "unended")
            span.set_status(Status(StatusCode.ERROR, "could not end the session at the provider"))
        duration = time.monotonic() - trace_.started
        span.end()
        self._metrics.operation_duration.record(duration, attrs)
        self._metrics.session_duration.record(
            duration,
            {
                sc.GEN_AI_PROVIDER_NAME: session.provider,
                sc.SESSION_OUTCOME: result.outcome,
            },
        )
        self._metrics.active.add(-1, {sc.GEN_AI_PROVIDER_NAME: session.provider})


HANDLERS: dict[str, Any] = {
    "status": SessionSpans._on_status,
    "ready": SessionSpans._on_ready,
    "response.started": SessionSpans._on_response_started,
    "response.done": SessionSpans._on_response_done,
    "transcript.done": SessionSpans._on_transcript,
    "speech.started": SessionSpans._on_speech,
    "speech.stopped": SessionSpans._on_speech,
    "client_event": SessionSpans._on_client_event,
    "error": SessionSpans._on_error,
}
