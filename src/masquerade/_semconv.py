"""Every span, attribute and metric name masquerade emits, in one place.

masquerade follows the OpenTelemetry GenAI semantic conventions (agent, tool and realtime
spans; client metrics) at their latest experimental state. Those conventions are still
at *Development* stability and moving, so the names live here and nowhere else: when
they change, this module changes and the rest of masquerade follows.

Names under ``masquerade.*`` are masquerade's own (the conventions have no word for
them yet). Use the module, not its names: ``from masquerade import _semconv as sc``.
"""

from __future__ import annotations

from typing import Final

#: The instrumentation scope (tracer and meter name).
SCOPE_NAME: Final = "masquerade"
#: The conventions emitted: the GenAI conventions' latest experimental state (no release
#: exists yet; equivalent to ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``).
SEMCONV_VERSION: Final = "gen_ai_latest_experimental"

# ------------------------------------------------------------------ operation names
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_REALTIME_INFERENCE: Final = "realtime_inference"

# ------------------------------------------------------------------ gen_ai attributes
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_AGENT_INVOCATION_END_REASON: Final = "gen_ai.agent.invocation.end_reason"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_REALTIME_SESSION_ID: Final = "gen_ai.realtime_session.id"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
ERROR_TYPE: Final = "error.type"

#: ``gen_ai.tool.type`` for a tool that runs in this process.
TOOL_TYPE_FUNCTION: Final = "function"
#: ``gen_ai.output.type`` of an avatar or voice agent.
OUTPUT_TYPE_SPEECH: Final = "speech"
END_REASON_COMPLETED: Final = "completed"
END_REASON_INTERRUPTED: Final = "interrupted"
END_REASON_SESSION_CLOSED: Final = "session_closed"

# ------------------------------------------------------------------ masquerade attributes
SESSION_ID: Final = "masquerade.session.id"
SESSION_AVATAR: Final = "masquerade.session.avatar"
SESSION_OUTCOME: Final = "masquerade.session.outcome"
SESSION_END_REASON: Final = "masquerade.session.reason"
SESSION_FAILURE_CODE: Final = "masquerade.session.failure_code"
SESSION_DROPPED_AUDIO: Final = "masquerade.session.dropped_audio"
SESSION_PROVIDER_ENDED: Final = "masquerade.session.provider_ended"
SESSION_TOOL_CALLS: Final = "masquerade.session.tool_calls"
SESSION_STATE: Final = "masquerade.session.state"
PROVIDER_SESSION_ID: Final = "masquerade.provider.session_id"
PROVIDER_STATUS: Final = "masquerade.provider.status"
QUEUED: Final = "masquerade.queued"
WAITED_S: Final = "masquerade.waited_s"
RESPONSE_STATUS: Final = "masquerade.response.status"
TOOL_OUTCOME: Final = "masquerade.tool.outcome"
GRAPH_NAME: Final = "masquerade.graph.name"
GRAPH_NODE: Final = "masquerade.graph.node"
ERROR_CODE: Final = "masquerade.error.code"
ERROR_FATAL: Final = "masquerade.error.fatal"
ERROR_MESSAGE: Final = "masquerade.error.message"
EVENT_NAME: Final = "masquerade.event.name"

# ------------------------------------------------------------------ span events
EVENT_STATUS: Final = "masquerade.session.status"
EVENT_QUEUED: Final = "masquerade.session.queued"
EVENT_READY: Final = "masquerade.session.ready"
EVENT_ERROR: Final = "masquerade.session.error"
EVENT_CLIENT_EVENT: Final = "masquerade.session.client_event"
EVENT_SPEECH_STARTED: Final = "masquerade.user.speech_started"
EVENT_SPEECH_STOPPED: Final = "masquerade.user.speech_stopped"
EVENT_TRANSCRIPT: Final = "masquerade.transcript"

# ------------------------------------------------------------------ metrics
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TOOL_DURATION: Final = "masquerade.tool.call.duration"
METRIC_PROVISIONING_DURATION: Final = "masquerade.session.provisioning.duration"
METRIC_QUEUE_DURATION: Final = "masquerade.session.queue.duration"
METRIC_SESSION_DURATION: Final = "masquerade.session.duration"
METRIC_ACTIVE_SESSIONS: Final = "masquerade.session.active"

#: Bucket boundaries the GenAI conventions advise for durations in seconds.
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
#: Session-length buckets (seconds): avatar calls last minutes, not milliseconds.
SESSION_BUCKETS: Final = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
#: Bucket boundaries the GenAI conventions advise for token counts.
TOKEN_BUCKETS: Final = tuple(4**i for i in range(14))

# ------------------------------------------------------------------ span names
def agent_span_name(agent: str | None) -> str:
    """``invoke_agent {name}``, or plain ``invoke_agent`` when there is no name."""
    return f"{OP_INVOKE_AGENT} {agent}" if agent else OP_INVOKE_AGENT


def tool_span_name(tool: str) -> str:
    return f"{OP_EXECUTE_TOOL} {tool}"


def workflow_span_name(workflow: str | None) -> str:
    return f"{OP_INVOKE_WORKFLOW} {workflow}" if workflow else OP_INVOKE_WORKFLOW


def node_span_name(node: str) -> str:
    return f"node {node}"


def inference_span_name(model: str | None) -> str:
    return f"{OP_REALTIME_INFERENCE} {model}" if model else OP_REALTIME_INFERENCE


#: Providers whose own session id names one realtime *connection* (it becomes
#: ``gen_ai.realtime_session.id``). Any other provider's session id names the whole
#: conversation (Runway's avatar session id) and becomes ``gen_ai.conversation.id``.
REALTIME_SESSION_ID_PROVIDERS: Final = frozenset({"openai"})
