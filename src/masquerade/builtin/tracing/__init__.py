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

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import NoOpTracer, Span

from ._plugin import Tracing
from ._sessions import CAPTURE_CONTENT_ENV

if TYPE_CHECKING:
    from ...host import Host

__all__ = ["Tracing", "workflow_span", "node_span", "CAPTURE_CONTENT_ENV"]


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
