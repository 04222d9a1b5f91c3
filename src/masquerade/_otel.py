"""Turn on OpenTelemetry export for an application in one call (what ``--trace`` does).

masquerade itself only uses the OpenTelemetry API; this helper is for *applications*
(the ``masquerade`` CLI, examples, your script) that want spans exported without
writing the SDK setup. It needs the ``otel`` extra (the masquerade wheel installed as
``masquerade-<version>-py3-none-any.whl[otel]``, see docs/first-hour.md)::

    from masquerade._otel import setup_tracing_from_env

    shutdown = setup_tracing_from_env()   # OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT
    try:
        ...                               # run sessions
    finally:
        shutdown()                        # flush what is still buffered

The standard variables apply: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default
``http://localhost:4318``; Phoenix listens on ``http://127.0.0.1:6006``),
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME`` (default ``masquerade``),
``OTEL_RESOURCE_ATTRIBUTES``. ``PHOENIX_PROJECT_NAME`` picks the Phoenix project.
Metrics are exported too when ``OTEL_METRICS_EXPORTER=otlp``.

If the application already installed a tracer provider, it is kept (never replaced).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from opentelemetry import metrics, trace

from .errors import ConfigurationError

__all__ = ["setup_tracing_from_env"]

logger = logging.getLogger("masquerade.tracing")

_FLUSH_MS = 5000


def setup_tracing_from_env(environ: Mapping[str, str] | None = None) -> Callable[[], None]:
    """Install an SDK tracer provider exporting OTLP/HTTP, unless one is installed.

    Returns a callable that flushes and shuts down what this call installed (a no-op
    when it installed nothing). Raises :class:`~masquerade.ConfigurationError` when the
    SDK or the exporter is missing.
    """
    env = os.environ if environ is None else environ
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigurationError(
            f"tracing export needs the OpenTelemetry SDK and OTLP exporter ({exc.name} is "
            "not installed)",
            hint="install masquerade with its otel extra (opentelemetry-sdk and "
            "opentelemetry-exporter-otlp-proto-http), see docs/first-hour.md",
        ) from None

    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        logger.info("a tracer provider is already installed; masquerade uses it as it is")
        return lambda: None

    attributes = {"service.name": env.get("OTEL_SERVICE_NAME") or "masquerade"}
    project = env.get("PHOENIX_PROJECT_NAME")
    if project:
        attributes["openinference.project.name"] = project
    provider = TracerProvider(resource=Resource.create(attributes))
    # The batch processor exports from its own thread: a slow or unreachable collector
    # never holds up a session.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    shutdowns: list[Callable[[], object]] = [provider.shutdown]
    flushes: list[Callable[[int], object]] = [provider.force_flush]

    if env.get("OTEL_METRICS_EXPORTER", "").strip().lower() == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        meters = MeterProvider(
            resource=provider.resource,
            metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())],
        )
        metrics.set_meter_provider(meters)
        shutdowns.append(meters.shutdown)
        flushes.append(meters.force_flush)

    done = False

    def shutdown() -> None:
        nonlocal done
        if done:
            return
        done = True
        for flush in flushes:
            try:
                flush(_FLUSH_MS)
            except Exception:  # an unreachable collector must not fail the command
                logger.warning("flushing telemetry failed", exc_info=True)
        for stop in shutdowns:
            try:
                stop()
            except Exception:
                logger.warning("shutting down telemetry failed", exc_info=True)

    return shutdown
