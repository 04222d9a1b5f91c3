"""The plugin's OpenTelemetry instruments (GenAI metrics and session metrics)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import metrics

from ... import _semconv as sc
from ._attributes import VERSION

if TYPE_CHECKING:
    from opentelemetry.metrics import Histogram, MeterProvider


class Metrics:
    """Histograms and counters, created once per :class:`Tracing` instance."""

    operation_duration: Histogram
    token_usage: Histogram
    tool_duration: Histogram
    provisioning: Histogram
    queue_wait: Histogram
    session_duration: Histogram

    def __init__(self, meter_provider: MeterProvider | None) -> None:
        meter = metrics.get_meter(sc.SCOPE_NAME, VERSION, meter_provider=meter_provider)
        seconds = [float(b) for b in sc.DURATION_BUCKETS]
        # (attribute, instrument name, unit, description, bucket boundaries)
        for attribute, name, unit, description, buckets in (
            ("operation_duration", sc.METRIC_OPERATION_DURATION, "s",
             "GenAI operation duration", seconds),
            ("token_usage", sc.METRIC_TOKEN_USAGE, "{token}",
             "Tokens used per provider response", [float(b) for b in sc.TOKEN_BUCKETS]),
            ("tool_duration", sc.METRIC_TOOL_DURATION, "s",
             "Duration of tool calls, by tool", seconds),
            ("provisioning", sc.METRIC_PROVISIONING_DURATION, "s",
             "Time from session start until it was ready to join", seconds),
            ("queue_wait", sc.METRIC_QUEUE_DURATION, "s",
             "Time a session waited in the provider's capacity queue", seconds),
            ("session_duration", sc.METRIC_SESSION_DURATION, "s",
             "Session duration, start to end", [float(b) for b in sc.SESSION_BUCKETS]),
        ):  # fmt: skip
            histogram = meter.create_histogram(
                name, unit=unit, description=description,
                explicit_bucket_boundaries_advisory=buckets,
            )  # fmt: skip
            setattr(self, attribute, histogram)
        self.active = meter.create_up_down_counter(
            sc.METRIC_ACTIVE_SESSIONS, unit="{session}", description="Sessions running now"
        )
