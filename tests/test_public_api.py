"""The curated public surface: ``masquerade.__all__`` is deliberate, not accidental."""

from __future__ import annotations

import masquerade

EXPECTED = {
    "__version__",
    "Host",
    "PluginInfo",
    "hookimpl",
    "Session",
    "SessionRequest",
    "SessionResult",
    "ToolCallRecord",
    "EventStream",
    "Poller",
    "Event",
    "JoinCredentials",
    "parse_event",
    "Provider",
    "ProviderSession",
    "ProvisioningStatus",
    "ProviderOutcome",
    "TranscriptTurn",
    "tool",
    "Tool",
    "ToolContext",
    "redact",
    "register_secret",
    "register_session_secret",
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
    "RedactingFilter",
    "JsonFormatter",
    "configure_logging",
}


GRAPH = {
    "Graph",
    "AvatarNode",
    "RetryPolicy",
    "START",
    "END",
    "GraphEvent",
    "NodeStarted",
    "NodeFinished",
    "NodeEvent",
    "GraphEnded",
}


def test_all_is_exactly_the_curated_surface() -> None:
    # A new public name must be added here on purpose; a removed one breaks users.
    assert set(masquerade.__all__) == EXPECTED | GRAPH
    assert len(masquerade.__all__) == len(set(masquerade.__all__))  # no duplicates


def test_every_exported_name_exists_and_errors_share_a_root() -> None:
    for name in masquerade.__all__:
        assert hasattr(masquerade, name), name
    for name in masquerade.__all__:
        obj = getattr(masquerade, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, masquerade.MasqueradeError), name
