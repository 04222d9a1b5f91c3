"""masquerade: avatar realtime sessions as nodes of an agent graph.

::

    import masquerade

    @masquerade.tool
    async def lookup_order(order_id: str) -> dict:
        \"\"\"Look up an order by its number.\"\"\"
        ...

    async with masquerade.Host() as host:
        result = await host.run_session(
            masquerade.SessionRequest(provider="runway", avatar="cooking-teacher",
                                      tools=[lookup_order])
        )
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._logjson import JsonFormatter, configure_logging
from ._redact import (
    RedactingFilter,
    install_log_redaction,
    redact,
    register_secret,
    register_session_secret,
)
from .errors import (
    CallFailed,
    ConfigurationError,
    EventParseError,
    GraphError,
    GraphValidationError,
    HookError,
    MasqueradeError,
    NodeError,
    PluginError,
    ProviderError,
    ProviderNotFound,
    ProvisioningTimeout,
    SessionClosed,
    SessionError,
    SessionFailed,
    ToolArgumentsError,
    ToolDefinitionError,
    ToolError,
    ToolExecutionError,
    ToolNotFound,
    ToolTimeout,
)
from .events import Event, JoinCredentials, parse_event
from .graph import (
    END,
    START,
    AvatarNode,
    Graph,
    GraphEnded,
    GraphEvent,
    NodeEvent,
    NodeFinished,
    NodeStarted,
    RetryPolicy,
)
from .hookspecs import hookimpl
from .host import Host, PluginInfo
from .poller import Poller
from .provider import Provider, ProviderOutcome, ProviderSession, ProvisioningStatus, TranscriptTurn
from .session import EventStream, Session, SessionRequest, SessionResult, ToolCallRecord
from .tools import Tool, ToolContext, tool

# websockets logs every handshake header (Authorization included) at DEBUG: mask secrets
# in the records of the libraries masquerade connects with, whoever configures logging.
install_log_redaction()

try:
    __version__ = version("masquerade")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "__version__",
    # host and plugins
    "Host",
    "PluginInfo",
    "hookimpl",
    # sessions
    "Session",
    "SessionRequest",
    "SessionResult",
    "ToolCallRecord",
    "EventStream",
    "Poller",
    "Event",
    "JoinCredentials",
    "parse_event",
    # providers
    "Provider",
    "ProviderSession",
    "ProvisioningStatus",
    "ProviderOutcome",
    "TranscriptTurn",
    # tools
    "tool",
    "Tool",
    "ToolContext",
    # graphs
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
    # secrets
    "redact",
    "register_secret",
    "register_session_secret",
    "RedactingFilter",
    # logging
    "JsonFormatter",
    "configure_logging",
    # errors
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
